"""ROS-free runtime of RTC: Algorithm 1 of the paper, shared by the robot and the benchmark.

Where each part of Algorithm 1 lives:

* GUIDEDINFERENCE -- :class:`rtc_ros.runtime.generator.ChunkGenerator` (``generate`` for the robot,
  ``chunk_fn`` for the Figure 5 harness; the maths in :mod:`rtc_ros.core.sampling` and
  :mod:`rtc_ros.core.guidance`).
* INFERENCELOOP -- :class:`rtc_ros.runtime.inference_loop.InferenceLoopCore` (when to infer, the
  plan: ``t_obs``, ``d = max(Q)``, ``s``, the executing chunk's remaining actions; the delay queue
  ``Q`` is :class:`rtc_ros.core.delay.DelayForecaster`).
* GETACTION -- :class:`rtc_ros.runtime.executor.ExecutorCore` (one command per tick, the sync and
  ensemble modes; the one chunk validator in :mod:`rtc_ros.runtime.chunk_validation`, chunk stores in
  :mod:`rtc_ros.runtime.chunk_store`, the start-up ramp and acceleration limit in
  :mod:`rtc_ros.runtime.shaping`).

The chunk contract between the two sides (metadata of ``rtc/chunk`` and ``rtc/executor_state``):
:mod:`rtc_ros.runtime.contract`. The method table: :mod:`rtc_ros.runtime.methods`. Around the robot:
re-sync around protective stops (:mod:`rtc_ros.runtime.stop_recovery`), merging per-arm joint
states (:mod:`rtc_ros.runtime.joint_merge`), the tracking watchdog (:mod:`rtc_ros.runtime.tracking`) and
an enabling device (:mod:`rtc_ros.runtime.enable_gate`).

Conventions: chunk index 0 = the action for the executor step at which the observation was taken
(``t_obs``); ``d`` = inference delay in steps (forecast; the frozen prefix); ``consumed`` = the delay
observed, ``takeover - t_obs``; ``s`` = execution horizon, the soft mask ends at ``H - s``; flow
time tau: 0 = noise, 1 = data.
"""
