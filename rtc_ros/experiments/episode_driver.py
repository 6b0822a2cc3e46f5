"""The episode driver of the sim experiment, the demo and ``sim_episodes``: a small rclpy node in the calling
process. One episode::

    sim/reset {"seed": s, "hold_s": h}  ->  wait sim/status episode k (the arms were moved home)
    chunk_executor/resync                (drop the old episode's chunks, hold the new measured pose, paused)
    wait sim/status state 'running'      (the reset hold is over: the sim follows commands again)
    chunk_executor/resume                (the next chunk is a start-up chunk, planned from the new state)
    rtc/episode {"cmd": "start", "meta": {...}}          (episode_recorder opens a bag)
    wait sim/status state 'done' (success latched or max_episode_steps) or the wall-clock timeout
    rtc/episode {"cmd": "stop", "success": ..., "score": progress}   (the bag is closed)

After :meth:`EpisodeDriver.follow_executor` (``operator`` mode: ``sim_episodes``, a long run beside an
operator) the driver also yields to whoever else holds the robot: before each reset it waits until the executor's reports (``rtc/executor_state``) say it is not
paused -- an operator's ``~/pause`` or ``~/hold``, a protective stop, a released enabling device, ``start_paused``
-- logging every 10 s what it waits for (before 2026-12-07 its re-sync and resume lifted an operator's pause at the
next reset, and a refused resume ended the whole launch: a two-robot walkthrough); a resume refused for another
reason (another executor on the same outputs) is logged and the episode starts over from its reset once the
executor runs again (not recorded meanwhile). A resume answered "not
paused" (someone resumed it during the reset hold) is fine in both modes. An operator's ``~/pause`` / ``~/hold``
(the reports' ``operator_pauses``, less this driver's own ``~/pause`` calls) during the reset hold is kept: no
resume, the reset again once the executor runs (before, the driver's resume lifted it); during an episode it ends the
episode (``interrupted``; the recorder's bag aborted), which ``sim_episodes`` does not count.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rtc_ros.runtime.contract import ExecutorReport


#: seconds the recorder has to say it records an episode after its start command
RECORDER_START_S = 5.0
#: an executor report older than this does not tell whether it runs (``operator`` mode waits for a fresh one)
REPORT_FRESH_S = 1.0


@dataclass
class EpisodeResult:
    """Outcome of one driven episode (the driver's own bookkeeping; the bags hold the rest).

    Attributes: method, extra_latency_ms (injected latency), seed, success, progress (0..5), sim_steps (20 ms ticks run),
    success_step (tick of success or -1), wall_s (start to done), timed_out (driver wall timeout),
    protective_stops (in the episode, from the simulator's status; -1 when it does not count them: stops off),
    task (the simulator's task; '' when its status did not say).
    """

    method: str
    extra_latency_ms: float
    seed: int
    success: bool
    progress: int
    sim_steps: int
    success_step: int
    wall_s: float
    timed_out: bool = False
    protective_stops: int = -1
    task: str = ""


@dataclass
class _Seen:
    status: dict[str, Any] = field(default_factory=dict)
    recorder: dict[str, Any] = field(default_factory=dict)
    recorder_n: int = 0  # recorder statuses received so far (one that came after a start is about it)
    chunks: int = 0
    executor: tuple[float, bool, int] | None = None  # (monotonic receipt, paused, operator_pauses) of the newest
    # executor report (operator_pauses -1: an executor that does not report them)
    cond: threading.Condition = field(default_factory=threading.Condition)


class EpisodeDriver:
    """rclpy node driving episodes of ``bimanual_sim`` + ``episode_recorder`` (see module docstring).

    Spins in a background thread; call :meth:`close` at the end.
    """

    def __init__(self, record: bool = True, node_name: str = "rtc_experiment_driver",
                 executor_node: str | None = "chunk_executor") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String
        from std_srvs.srv import Trigger
        from trajectory_msgs.msg import JointTrajectory

        self._rclpy = rclpy
        if not rclpy.ok():
            rclpy.init()
        self.node = rclpy.create_node(node_name)
        rel = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.record = record
        self.operator = False  # follow_executor: yield to a paused executor (module docstring)
        self.cut_short = ""  # the recorder's status of the last episode when it closed it before the stop
        self.last_answer = ""  # the newest service answer's message
        self.recording = False  # an episode start sent to the recorder, not yet stopped (abort_recording)
        self.last_recorded = False  # whether the recorder said it recorded the last episode run
        self.interrupted = ""  # operator mode: why the last episode was ended early and does not count ('': it ran)
        self._own_pauses = 0  # this driver's ~/pause calls (the executor counts them with an operator's)
        self.seen = _Seen()
        self._String = String
        self._reset_pub = self.node.create_publisher(String, "sim/reset", rel)
        self._episode_pub = self.node.create_publisher(String, "rtc/episode", rel)
        self.node.create_subscription(String, "sim/status", self._on_status, rel)
        self.node.create_subscription(String, "rtc/episode_status", self._on_recorder, latched)
        self.node.create_subscription(JointTrajectory, "rtc/chunk", self._on_chunk, rel)
        self._Trigger = Trigger
        self._resync_cli = self._resume_cli = self._pause_cli = None
        self.use_executor(executor_node)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except Exception:  # noqa: BLE001 -- shutdown races
            pass

    def _update(self, key: str, value: Any) -> None:
        with self.seen.cond:
            setattr(self.seen, key, value)
            self.seen.cond.notify_all()

    def _on_status(self, msg: Any) -> None:
        try:
            self._update("status", json.loads(msg.data))
        except ValueError:
            pass

    def _on_recorder(self, msg: Any) -> None:
        try:
            status = json.loads(msg.data)
        except ValueError:
            return
        with self.seen.cond:
            self.seen.recorder, self.seen.recorder_n = status, self.seen.recorder_n + 1
            self.seen.cond.notify_all()

    def _on_chunk(self, _msg: Any) -> None:
        self._update("chunks", self.seen.chunks + 1)

    def follow_executor(self, executor_state_topic: str = "rtc/executor_state") -> None:
        """``operator`` mode (module docstring): read the executor's reports on ``executor_state_topic``."""
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState

        self._state_topic = executor_state_topic
        self.node.create_subscription(JointState, executor_state_topic, self._on_executor_state,
                                      QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                                 history=HistoryPolicy.KEEP_LAST))
        self.operator = True

    def _on_executor_state(self, msg: Any) -> None:
        try:
            rep = ExecutorReport.decode(msg.header.frame_id)
        except ValueError:
            return
        self._update("executor", (time.monotonic(), rep.paused, rep.operator_pauses))

    def _pauses(self) -> tuple[int, int]:
        """(the executor's ``operator_pauses`` in its newest report or -1, this driver's own ``~/pause`` calls)."""
        seen = self.seen.executor
        return (-1 if seen is None else seen[2]), self._own_pauses

    def _operator_paused(self, base: tuple[int, int], seen: tuple[float, bool, int] | None) -> bool:
        """Whether an executor report ``seen`` counts more ``~/pause`` / ``~/hold`` calls than :meth:`_pauses` did at
        ``base``, beyond this driver's own since (an operator's)."""
        return (seen is not None and base[0] >= 0 and seen[2] >= 0
                and seen[2] - base[0] > self._own_pauses - base[1])

    def _paused_in_hold(self, base: tuple[int, int]) -> bool:
        """``operator`` mode, before the resume after a reset: did an operator pause the executor since ``base``
        (the reset hold: its ``~/pause`` was answered "already paused", and the resume would lift it)? Judged on a
        report newer than this call (at most :data:`REPORT_FRESH_S` awaited; none: no)."""
        t0 = time.monotonic()
        try:
            self.wait_for(lambda s: s.executor is not None and s.executor[0] > t0, REPORT_FRESH_S, "")
        except TimeoutError:
            return False
        return self._operator_paused(base, self.seen.executor)

    def wait_executor_free(self, log_every_s: float = 10.0) -> float:
        """``operator`` mode: block until the executor's newest report is fresh and not paused (module docstring);
        returns the seconds waited. Logs every ``log_every_s`` what it waits for; ``KeyboardInterrupt`` on Ctrl-C."""
        t0, wait = time.monotonic(), REPORT_FRESH_S + 0.5  # (the first word at once: a report comes every tick)

        def free(s: _Seen) -> bool:  # (a report from after the call: one from before a refused resume said running)
            return s.executor is not None and s.executor[0] > t0 and not s.executor[1]

        while True:
            try:
                self.wait_for(free, wait, "")
                return time.monotonic() - t0
            except TimeoutError:
                seen = self.seen.executor
                why = (f"no report from the executor on {self._state_topic}" if seen is None else
                       f"no report from the executor for {time.monotonic() - seen[0]:.0f} s" if
                       time.monotonic() - seen[0] >= REPORT_FRESH_S else
                       "the executor is paused (an operator's ~/pause or ~/hold, a protective stop, a released "
                       "enabling device, start_paused, another executor on its outputs: its /diagnostics say which)")
                self.node.get_logger().warn(f"the next episode waits ({time.monotonic() - t0:.0f} s): {why}; "
                                            "it starts once the executor runs again (~/resume)")
                wait = log_every_s

    def _check_running(self, what: str) -> None:
        """Raise ``KeyboardInterrupt`` once ROS was shut down (SIGINT: rclpy's handler shuts the context
        down, and nothing this driver waits for can arrive any more)."""
        if not self._rclpy.ok():
            raise KeyboardInterrupt(f"ROS shut down while waiting for {what}")

    def wait_for(self, pred: Any, timeout: float, what: str) -> None:
        """Block until ``pred(seen)``; ``TimeoutError`` naming ``what`` after ``timeout``, ``KeyboardInterrupt``
        as soon as ROS is shut down (Ctrl-C)."""
        end = time.monotonic() + timeout
        with self.seen.cond:
            while not pred(self.seen):
                self._check_running(what)
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
                self.seen.cond.wait(min(left, 0.5))

    def wait_ready(self, timeout: float = 120.0, chunks: int = 2) -> None:
        """Wait for the simulator status, the recorder (when recording) and ``chunks`` new chunks."""
        self.wait_for(lambda s: bool(s.status), timeout, "sim/status from bimanual_sim")
        if self.record:
            self.wait_for(lambda s: s.recorder.get("state") == "idle", timeout, "episode_recorder to be idle")
        c0 = self.seen.chunks
        self.wait_for(lambda s: s.chunks >= c0 + chunks, timeout, "chunks from policy_inference on rtc/chunk")

    def use_executor(self, executor_node: str | None) -> None:
        """Re-sync the executor ``executor_node`` (its node name, relative to this node's namespace)
        around every reset through its ``~/resync`` and ``~/resume`` services; None or "": do not."""
        for cli in (self._resync_cli, self._resume_cli, self._pause_cli):
            if cli is not None:
                self.node.destroy_client(cli)
        self._resync_cli = self._resume_cli = self._pause_cli = None
        if executor_node:
            self._resync_cli = self.node.create_client(self._Trigger, f"{executor_node}/resync")
            self._resume_cli = self.node.create_client(self._Trigger, f"{executor_node}/resume")
            self._pause_cli = self.node.create_client(self._Trigger, f"{executor_node}/pause")

    def _resync(self) -> None:
        """``~/resync``; an executor with ``max_accel`` refuses it while its commands still move: ``~/pause`` (it
        brakes), then again until accepted (at most 5 s: it brakes within 3 s)."""
        end = time.monotonic() + 5.0
        while not self._call(self._resync_cli, "re-sync after the reset", refusable=time.monotonic() < end):
            self._own_pauses += 1  # (counted by the executor as an operator's would be)
            self._call(self._pause_cli, "pause to brake before the re-sync", refusable=True)
            time.sleep(0.05)

    def _resume(self) -> bool:
        """``~/resume`` after the reset hold; whether the executor runs. Answered "not paused": somebody resumed it
        meanwhile (an operator during the hold), fine. Refused otherwise: an error in the experiment
        (``RuntimeError``); in ``operator`` mode logged and False (the episode is not run: its reset is done again
        once the executor runs -- a review: it was recorded and scored while the robot held)."""
        end = time.monotonic() + 11.0  # (a controller's first verdict awaited: at most PENDING_S, 10 s)
        while not self._call(self._resume_cli, "resume after the reset", refusable=True):
            if not self.last_answer.startswith("refused: waiting for the parameters") or time.monotonic() > end:
                break
            time.sleep(0.2)
        else:
            return True
        answer = self.last_answer
        if answer == "not paused":
            self.node.get_logger().info("the executor was resumed by someone else during the reset hold")
            return True
        if not self.operator:
            raise RuntimeError(f"{self._resume_cli.srv_name} (resume after the reset) failed: {answer}")
        self.node.get_logger().error(f"{self._resume_cli.srv_name} after the reset was refused: {answer}; the robot "
                                     "holds, and the episode starts over once the executor runs again")
        return False

    def _call(self, client: Any, what: str, timeout: float = 10.0, refusable: bool = False) -> bool:
        """Call a ``std_srvs/Trigger`` service; ``TimeoutError`` if it does not answer, ``RuntimeError`` if
        it answers ``success: false`` (both name the service) unless ``refusable`` (then False)."""
        self._check_running(f"the service {client.srv_name}")
        try:
            ready = client.wait_for_service(timeout_sec=timeout)
        except Exception:  # noqa: BLE001 -- rclpy raises once the context is shut down meanwhile
            self._check_running(f"the service {client.srv_name}")
            raise
        if not ready:
            self._check_running(f"the service {client.srv_name}")
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for the service {client.srv_name}")
        done = threading.Event()
        fut = client.call_async(self._Trigger.Request())
        fut.add_done_callback(lambda _f: done.set())
        end = time.monotonic() + timeout
        while not done.wait(min(0.5, max(0.0, end - time.monotonic()))):
            self._check_running(f"{client.srv_name} ({what})")
            if time.monotonic() >= end:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {client.srv_name} ({what})")
        res = fut.result()
        self.last_answer = str(getattr(res, "message", "no response"))
        if res is None or not res.success:
            if refusable:
                return False
            raise RuntimeError(f"{client.srv_name} ({what}) failed: {getattr(res, 'message', 'no response')}")
        return True

    def _send(self, pub: Any, payload: dict[str, Any]) -> None:
        pub.publish(self._String(data=json.dumps(payload)))

    def run_episode(self, seed: int, method: str, extra_latency_ms: float, hold_s: float = 1.5,
                    timeout_s: float = 40.0, meta: dict[str, Any] | None = None) -> EpisodeResult:
        """Reset the sim (seeded cube), record one episode until success/truncation, return the result."""
        self.interrupted = self.cut_short = ""
        while True:  # (operator mode: a refused resume runs the reset again once the executor runs, unrecorded)
            base = (-1, 0)
            if self.operator and self._resume_cli is not None:  # (the robot stays where the operator holds it)
                self.wait_executor_free()
                base = self._pauses()
            ep0 = int(self.seen.status.get("episode", -1))
            self._send(self._reset_pub, {"seed": seed, "hold_s": hold_s})
            self.wait_for(lambda s: s.status.get("episode", -1) > ep0, 10.0, "the simulator reset")
            if self._resync_cli is not None:  # the arms were teleported: the executor must start over from them
                self._resync()
            self.wait_for(lambda s: s.status.get("state") == "running", hold_s + 10.0, "the reset hold to end")
            if self.operator and self._resume_cli is not None and self._paused_in_hold(base):
                self.node.get_logger().warn("an operator paused the executor (~/pause or ~/hold) during the reset "
                                            "hold: not resumed; the episode starts over from its reset once the "
                                            "executor runs again (~/resume)")
                continue
            if self._resume_cli is None or self._resume():
                break
        t0 = time.monotonic()
        self.last_recorded = confirmed = False
        n0 = self.seen.recorder_n  # (a late 'recording' from an earlier, unconfirmed start is not this one's)
        if self.record:
            self._send(self._episode_pub, {"cmd": "start", "meta": {
                # the simulator's task (a conveyor run was labelled transfer_cube -- an audit)
                "task": str(self.seen.status.get("task") or "transfer_cube"), "seed": seed, "method": method,
                "extra_latency_ms": extra_latency_ms,
                "source": "rtc_ros.experiments", **(meta or {})}})
            self.recording = True  # (stopped or aborted whatever the recorder says: a slow one still gets its stop)
            try:  # the recorder's own word (its latched 'idle' from before a crash would pass every later wait)
                self.wait_for(lambda s: s.recorder_n > n0 and s.recorder.get("state") == "recording",
                              RECORDER_START_S, "")
                confirmed = True
            except TimeoutError:
                self.node.get_logger().error(f"episode_recorder did not start recording within {RECORDER_START_S:g} s "
                                             f"(seed {seed}): it is not running or failed; this episode is not recorded")
        timed_out = False
        base = self._pauses() if self.operator and self._resume_cli is not None else (-1, 0)
        try:  # (operator mode: until an operator pauses the executor -- the episode then does not count)
            self.wait_for(lambda s: s.status.get("state") == "done" or (
                bool(s.executor and s.executor[1]) and self._operator_paused(base, s.executor)),
                timeout_s, "the episode to finish")
        except TimeoutError:
            timed_out = True
        if self.operator and self.seen.status.get("state") != "done" and self._operator_paused(base, self.seen.executor):
            self.interrupted = "paused by an operator (~/pause or ~/hold)"
            if self.recording:
                self.abort_recording(self.interrupted)
        st = dict(self.seen.status)
        wall = time.monotonic() - t0
        success = bool(st.get("success"))
        if self.recording:
            confirmed = confirmed or (self.seen.recorder_n > n0 and self.seen.recorder.get("state") == "recording")
            closed = self.seen.recorder  # (idle already: the recorder closed it itself, e.g. low on disk space)
            self.cut_short = str(closed.get("last_status", "?")) if confirmed and closed.get("state") == "idle" else ""
            self._send(self._episode_pub, {"cmd": "stop", "success": success, "score": int(st.get("progress", 0)),
                                           "notes": f"seed {seed}, {st.get('step')} sim steps"})
            if confirmed:
                self.wait_for(lambda s: s.recorder.get("state") in ("idle", "error"), 30.0, "the recorder to close the bag")
            self.recording, self.last_recorded = False, confirmed and self.seen.recorder.get("state") == "idle"
        return EpisodeResult(method, extra_latency_ms, seed, success, int(st.get("progress", 0)), int(st.get("step", 0)),
                             int(st.get("success_step", -1)), round(wall, 3), timed_out,
                             int(-1 if st.get("protective_stops") is None else st["protective_stops"]),
                             str(st.get("task") or ""))

    def abort_recording(self, reason: str, timeout: float = 3.0) -> bool:
        """Close the episode the recorder records (``abort``: status ``aborted``), e.g. when this driver is
        interrupted mid-episode (the recorder would record on until its ``max_duration``); True once it is idle."""
        if not self.recording or not self._rclpy.ok():
            return False
        self._send(self._episode_pub, {"cmd": "abort", "reason": reason})
        self.recording = False
        try:
            self.wait_for(lambda s: s.recorder.get("state") in ("idle", "error"), timeout, "the recorder to close")
        except (TimeoutError, KeyboardInterrupt):
            return False
        return True

    def close(self) -> None:
        try:
            self._executor.shutdown()
            self._thread.join(5.0)  # a spin thread alive at interpreter exit aborts the process (SIGABRT)
            self.node.destroy_node()
        finally:
            self._rclpy.try_shutdown()
