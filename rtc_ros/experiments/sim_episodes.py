"""sim_episodes: runs evaluation episodes of ``bimanual_sim`` for ``launch/sim.launch.py``.

    ros2 run rtc_ros sim_episodes --ros-args -p episodes:=3 -p record:=true

Each episode, as in the demo (:class:`rtc_ros.experiments.runner.EpisodeDriver`): ``sim/reset`` with
cube seed ``seed0 + i``, wait until the simulator runs, ``rtc/episode`` start (when ``record``: the
``episode_recorder`` opens a bag), wait for ``done`` (success or ``max_episode_steps``) or ``timeout_s``,
``rtc/episode`` stop with ``success`` and ``score`` = task progress 0..5 (the bag is closed; an episode the
recorder did not say it records within 5 s is logged as an error, not counted as recorded). Interrupted
(SIGINT or SIGTERM) mid-episode, it aborts the recorder's episode before exiting (status ``aborted``; it was left
recording until the recorder's ``max_duration``, and the next ``sim_episodes`` waited for it). Around each
reset the executor named ``executor_node`` is re-synced (``~/resync`` after the arms moved home,
``~/resume`` when the hold ends; empty: no re-sync) -- after waiting for it to run: an operator's ``~/pause`` or
``~/hold``, a protective stop, a released enabling device or ``start_paused`` hold the next episode until the executor
runs again (``EpisodeDriver``'s ``operator`` mode; an episode the recorder cut short is logged so). An operator's
``~/pause`` or ``~/hold`` during the reset hold is kept (not resumed: the reset is done again once the executor runs),
and one during an episode ends it, its bag aborted, not counted: the same seed runs again (the executor's reports
count them, ``operator_pauses``; a protective stop or the enabling device does not end an episode). All topics
are relative, so it follows a namespace. After ``episodes`` episodes (0 = until Ctrl-C) it exits 0;
``sim.launch.py`` then shuts the launch down. Exit code 1 when the nodes never became ready.

Parameters: ``episodes`` (3), ``seed0`` (10000, the evaluation seeds), ``hold_s`` (1.5), ``timeout_s`` (40),
``ready_timeout_s`` (180), ``record`` (true), ``executor_node`` (``chunk_executor``), ``method`` and
``extra_latency_ms`` (stored in each episode's meta; the nodes' own parameters are what runs),
``executor_state_topic`` (``rtc/executor_state``: the executor's reports, read to wait while it is paused).
"""

from __future__ import annotations

import signal
import sys

from rtc_ros.experiments.runner import EVAL_SEED0, EpisodeDriver
from rtc_ros.nodes.spin import SIGINT_RECEIVED, ignore_sigint, sigint_once

PARAMS = {"episodes": 3, "seed0": EVAL_SEED0, "hold_s": 1.5, "timeout_s": 40.0, "ready_timeout_s": 180.0,
          "record": True, "method": "", "extra_latency_ms": 0.0, "executor_node": "chunk_executor",
          "executor_state_topic": "rtc/executor_state"}


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a supervisor, ``kill``) ends the run as the first SIGINT does (ignored after it)."""
    if not SIGINT_RECEIVED:
        SIGINT_RECEIVED.append(True)
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import rclpy

    from rclpy.signals import SignalHandlerOptions

    sigint_once()  # a second SIGINT (ros2 launch's own, after the terminal's) must not interrupt the cleanup
    signal.signal(signal.SIGTERM, _terminate)
    # (no rclpy handlers: the context stays up after a signal, so the recorder's episode can still be aborted)
    rclpy.init(args=sys.argv if argv is None else argv, signal_handler_options=SignalHandlerOptions.NO)
    driver = EpisodeDriver(node_name="sim_episodes")
    node, log = driver.node, driver.node.get_logger()
    p = {k: node.declare_parameter(k, v).value for k, v in PARAMS.items()}
    driver.follow_executor(str(p["executor_state_topic"]))  # (operator mode: yields to a paused executor)
    driver.record = bool(p["record"])
    driver.use_executor(str(p["executor_node"]))
    n = int(p["episodes"])
    done = successes = 0
    try:
        log.info(f"waiting for bimanual_sim, policy_inference{', episode_recorder' if driver.record else ''}")
        driver.wait_ready(timeout=float(p["ready_timeout_s"]))
        while n <= 0 or done < n:
            r = driver.run_episode(int(p["seed0"]) + done, str(p["method"]), float(p["extra_latency_ms"]),
                                   hold_s=float(p["hold_s"]), timeout_s=float(p["timeout_s"]),
                                   meta={"source": "sim.launch.py"})
            if driver.interrupted:  # (not counted: the same seed again once the executor runs)
                log.warn(f"episode {done + 1} seed {r.seed} ended after {r.wall_s:.1f} s: {driver.interrupted}; "
                         f"not counted{', its bag aborted' if driver.record else ''}: it runs again once the executor "
                         "runs (~/resume)")
                continue
            done += 1
            successes += r.success
            log.info(f"episode {done}/{n if n > 0 else 'inf'} seed {r.seed}: success={r.success} "
                     f"progress={r.progress} steps={r.sim_steps} ({r.wall_s:.1f} s)"
                     + ((" [NOT recorded]" if not driver.last_recorded else
                         f" [recorded, cut short by the recorder: {driver.cut_short}]" if driver.cut_short else
                         " [recorded]") if driver.record else ""))
        log.info(f"done: {successes}/{done} episodes succeeded")
        return 0
    except TimeoutError as exc:
        log.error(f"giving up: {exc}")
        return 1
    except KeyboardInterrupt:
        ignore_sigint()  # Ctrl-C's second SIGINT (from ros2 launch) must not abort the cleanup
        if driver.abort_recording("sim_episodes interrupted"):
            log.info("interrupted: the recorder's episode was aborted")
        return 0
    finally:
        ignore_sigint()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # (the cleanup runs to its end; SIGKILL still ends it)
        driver.close()


if __name__ == "__main__":
    sys.exit(main())
