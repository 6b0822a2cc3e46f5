"""chunk_executor's operator services (``std_srvs/Trigger``, node-private): ``~/pause``, ``~/resume``,
``~/resync`` and ``~/hold`` (see :mod:`rtc_ros.nodes.chunk_executor`); the rules are
:class:`~rtc_ros.runtime.executor.ExecutorCore`'s and, during a protective stop,
:class:`~rtc_ros.runtime.stop_recovery.StopRecovery`'s. Also the stop of the process itself (SIGINT / SIGTERM):
:meth:`OperatorServices.brake_to_stop`."""

from __future__ import annotations

import threading
import time
from typing import Any

from std_srvs.srv import Trigger

from rtc_ros.nodes.params.notes import BRAKE_LIMIT_S


class OperatorServices:
    """Created by the chunk_executor node ``node``: its core, stop recovery and logger answer the calls."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self._paused_at: float | None = None  # (monotonic) when ~/pause paused it; plans older than max_chunk_age
        # by the ~/resume are dropped
        for name, callback in (("~/pause", self.on_pause), ("~/resume", self.on_resume), ("~/resync", self.on_resync),
                               ("~/hold", self.on_hold)):
            node.create_service(Trigger, name, callback, callback_group=node._io_group)

    def on_pause(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        core = self.node.core
        core.count_operator_pause()  # (reported: a driver's resume after its own re-sync must not lift this one)
        if self.node._recovery.request(resume=False):
            return self._stopped_answer(response, "stays paused when the robot's stop ends")
        response.success = core.pause()
        if response.success:
            self._paused_at = time.monotonic()
        response.message = (f"paused at step {core.next_step - 1}: holding the last command" if response.success
                            else f"already paused ({core.pause_reason or '~/pause'}); it stays paused until ~/resume")
        self.node.get_logger().info(response.message)
        return response

    def on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        core = self.node.core
        if self.node.outputs.muted:
            response.success = False
            response.message = "refused: " + self.node.outputs.text()
            self.node.get_logger().error(response.message)
            return response
        if self.node._controllers is not None:  # (the graph now: a controller loaded just before the call)
            self.node._controllers.poll()
        asking = self.node._controllers.pending() if self.node._controllers is not None else []
        if asking:  # (a controller loaded just before: its joints not judged yet)
            response.success = False
            response.message = (f"refused: waiting for the parameters of {', '.join(asking)} (its joints are checked "
                                "before it gets commands); try again in a second")
            self.node.get_logger().warn(response.message)
            return response
        unheard = [] if self.node._dry else self.node._unheard_commands()
        if unheard:  # (a bring-up walkthrough: resumed into nothing, the chunks ran on, and the controller loaded
            # 16 s later jumped 0.19 rad to their newest command within one tick)
            response.success = False
            response.message = (f"refused: nobody subscribes {', '.join(unheard)} (a controller not loaded or not "
                                "active yet, or a wrong topic): the commands would go nowhere while the chunks run "
                                "on, and a controller coming later would jump to the newest; activate the "
                                "controllers, then ~/resume")
            self.node.get_logger().error(response.message)
            return response
        if self.node._recovery.request(resume=True):
            return self._stopped_answer(response, "resumes from the measured position when the robot's stop ends")
        dropped = self._drop_old_plans()
        response.success = core.resume()
        outside = dict(core.out_of_limits)
        if outside:
            response.message = f"refused: measured {self.node._outside_text(outside)}; move the arm back first"
            self.node.get_logger().error(response.message)
            return response
        going = ("the executing chunk continues" if core.executing_seq >= 0
                 else dropped + "holding until a new chunk arrives (it starts at its index 0)")
        if not core.enabled:
            going = f"still holding: {self.node.p.enable_topic} does not enable it"
        response.message = f"resumed at step {core.next_step}: {going}" if response.success else "not paused"
        self.node.get_logger().info(response.message)
        return response

    def _drop_old_plans(self) -> str:
        """Before resuming: the chunks dropped if paused longer than max_chunk_age (what to say, or '')."""
        core = self.node.core
        paused = self._paused_at is not None and core.paused
        # (and however it was paused -- a re-sync, start_paused, a measurement beyond the limits, a stop -- its ticks
        # paused in a row: an audit's chunk accepted after a re-sync ran at a ~/resume two minutes later)
        paused_s = max(time.monotonic() - self._paused_at if paused else 0.0,
                       core.stats.paused_ticks * float(self.node.dt) if core.paused else 0.0)
        self._paused_at = None
        if not self.node.drop_stale_plans(paused_s):
            return ""
        return f"paused {paused_s:.1f} s (> max_chunk_age {float(self.node.p.max_chunk_age):g} s): chunks dropped, "

    def _stopped_answer(self, response: Trigger.Response, what: str) -> Trigger.Response:
        response.success = True
        response.message = f"the robot is in a protective stop: the executor holds, and {what}"
        self.node.get_logger().info(response.message)
        return response

    def on_resync(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if not self.node.core.at_rest:  # (only with max_accel: without it a hold stops in one tick anyway)
            response.success = False
            response.message = ("refused: the arm is moving; a re-sync drops the commands at once (no braking: the "
                                "controllers keep the last, moving setpoint, a velocity jump); call ~/pause first "
                                "(it brakes at max_accel), then ~/resync once it stands; or ~/hold to stop where it is at once")
            self.node.get_logger().warn(response.message)
            return response
        return self._resync_answer(response, command_hold=False)

    def on_hold(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.node.core.count_operator_pause()
        return self._resync_answer(response, command_hold=True)

    def _resync_answer(self, response: Trigger.Response, command_hold: bool) -> Trigger.Response:
        step = self.node.core.resync(command_hold=command_hold, why="~/hold" if command_hold else "~/resync")
        self.node._measure_again()
        response.success = True
        commanded = " (its position is commanded)" if command_hold else ""
        response.message = (f"re-synced at step {step}: chunks dropped, waiting for a new joint state{commanded}, "
                            "paused (~/resume to continue)")
        self.node.get_logger().info(response.message)
        return response

    def brake_to_stop(self, cut_short: threading.Event, limit_s: float = BRAKE_LIMIT_S) -> None:
        """The process is asked to stop (Ctrl-C, ``ros2 launch``'s SIGINT, SIGTERM; :class:`rtc_ros.nodes.spin.StopSignals`
        calls this before ROS shuts down): hold as ``~/pause`` does -- with ``<arm>.max_accel`` a moving joint brakes to
        a stop at it -- and wait until every joint is at rest, at most ``limit_s``, while ticks come (none for
        three ticks, at least 0.5 s -- simulated time standing still -- ends the wait), or until ``cut_short`` (a SIGTERM). Without ``max_accel`` a hold is the
        last command already: nothing to wait for. The controllers then keep the last command, now at rest."""
        node, core = self.node, self.node.core
        if core.at_rest:
            return
        start = last = time.monotonic()
        ticks = core.stats.ticks + core.stats.holds
        node.get_logger().warn("stopping: braking to a stop at max_accel before shutting down")
        while not core.at_rest and not cut_short.is_set() and time.monotonic() - start < limit_s:
            core.pause("shutting down")  # (again each time: a protective stop's end may have resumed it)
            cut_short.wait(node.dt / 2)
            now, n = time.monotonic(), core.stats.ticks + core.stats.holds
            if n != ticks:
                ticks, last = n, now
            elif now - last > max(0.5, 3 * node.dt):  # no tick: simulated time stands still (or the loop stalled)
                break
        took = time.monotonic() - start
        if core.at_rest:
            node.get_logger().info(f"stopping: at rest after {took:.2f} s")
        else:
            why = "SIGTERM" if cut_short.is_set() else (
                f"the {limit_s:g} s limit" if took >= limit_s else "no tick")
            node.get_logger().error(f"stopping: still moving after {took:.2f} s ({why}): shutting down; the "
                                    "controllers keep the last command")
