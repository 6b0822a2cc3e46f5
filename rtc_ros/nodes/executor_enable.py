"""chunk_executor's enabling device (``enable_topic``: a deadman switch, a foot pedal; ``std_msgs/Bool``).

The device's newest value is sampled once per tick (:class:`~rtc_ros.runtime.enable_gate.EnableGate`: true and
younger than ``enable_timeout_s``) and given to the core (:meth:`~rtc_ros.runtime.executor.ExecutorCore.set_enabled`:
released, every tick holds; pressed again, every chunk is dropped). A press enables the core only at the first
joint state measured since (:meth:`~rtc_ros.runtime.executor.ExecutorCore.press`, which checks
:meth:`~rtc_ros.runtime.executor.ExecutorCore.moved_while_released`): an arm that moved while released (a device
that also cuts the drives, a hand) is held where it stands instead of being driven back to the old hold
(since 2026-12-07). Until that measurement the robot holds (diagnostics: "pressed, waiting for a joint state"):
before, the core was enabled at the press and a chunk taking over before the measurement skipped the check, and
the joint-state subscription was created again from the control loop (a race with the executor thread that could
leave none). With ``enable_topic`` set the node now keeps reading joint states throughout.

Threads: :meth:`ExecutorEnable.apply` runs on the control loop, :meth:`ExecutorEnable.on_joint_state` and the
device's messages on the executor thread: the press / release state is under one lock.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

from rtc_ros.runtime.enable_gate import EnableGate


class ExecutorEnable:
    """Owned by the chunk_executor node ``node`` (its core, joint-state reader, names, logger and
    ``_measure_again``); ``p``: its validated parameters (``enable_topic`` set)."""

    def __init__(self, node: Any, p: Any) -> None:
        self.node, self.topic = node, p.enable_topic
        self.gate = EnableGate(p.enable_timeout_s)
        self.press_pending = False  # pressed again: enabled at the next joint state (on_joint_state)
        self.release_pending = False  # released: keep the next joint state (a gripper's opening then, at_release)
        self.at_release: Any = None
        self.log_period = 1.0
        self._said = ""  # the reason last logged (never heard, released, silent)
        self.press_ns = 0  # the executor clock's time of the pending press: joint states stamped before it are not taken
        self._press_t = 0.0  # its monotonic time (for the warning while it waits)
        self._lock = threading.Lock()
        node.create_subscription(Bool, p.enable_topic, lambda m: self.gate.on_message(m.data, time.monotonic()),
                                 qos_profile_sensor_data, callback_group=node._io_group)

    def why(self, t_now: float) -> str:
        if self.press_pending:
            return "pressed, waiting for a joint state measured since the press (holding)"
        return self.gate.why(t_now)

    def apply(self, t_now: float, period: float) -> None:
        """The device's state to the core (once per tick); logs changes, throttled to ``period``."""
        node = self.node
        on = self.gate.sample(t_now)
        with self._lock:
            if on and not node.core.enabled:
                if not self.press_pending:  # enabled at the first joint state from now on (on_joint_state)
                    self.press_pending, self._press_t = True, t_now
                    node._measure_again()  # (joint states stamped before the press are not taken)
                    self.press_ns = node._resync_after_ns
                elif t_now - self._press_t > 0.5 and node._throttled("press_waits", period):
                    node.get_logger().warn(
                        f"{self.topic} pressed {t_now - self._press_t:.1f} s ago, still holding: no joint state "
                        f"stamped after the press has arrived on {node.p.joint_states_topic} (a driver silent, or "
                        "stamping with a clock behind this one's?)")
                return
            if self.press_pending:  # released again before a joint state came
                self.press_pending = False
            self.log_period = period
            changed = not on and node.core.set_enabled(False)
            if changed:
                self.release_pending, self.at_release = True, None
                node._measure_again()  # (where a gripper was when released: one that falls open meanwhile moved)
        if on:  # (enabled: nothing to say; most ticks of the 50 Hz loop end here)
            return
        why = self.gate.why(t_now)
        kind = why.split(" for ")[0]  # (never heard, released, silent)
        if changed or kind != self._said or node._throttled("disabled", 10.0 * period):
            node.get_logger().warn(f"disabled: {self.topic} {why}: holding")  # (at a change of reason, else once per
            self._said = kind  # 10 log periods: a released deadman is an idle robot's normal state)
            node._throttled("disabled", 0.0)  # (the period counts from here: not the same line again a tick later)

    def on_joint_state(self, msg: JointState, stamp_ns: int) -> None:
        """A joint state (``stamp_ns``: its header stamp, 0 = unstamped) measured after the newest re-sync, release or
        press: after a release the first readable one is kept (``at_release``); after a press the first stamped
        after it (checked here under the lock: the press may have come since the node's own check) enables the
        core, compared with the held command."""
        if not (self.press_pending or self.release_pending):
            return
        node = self.node
        try:
            q = node._reader.positions(msg)
        except ValueError:
            return  # (not ours: the next one)
        with self._lock:
            if self.release_pending:
                self.release_pending, self.at_release = False, q
            if not self.press_pending or 0 < stamp_ns < self.press_ns:
                return
            self.press_pending = False
            moved = node.core.press(q, self.at_release)
        if node._throttled("enabled", self.log_period):
            node.get_logger().info(f"enabled ({self.topic}): chunks planned before dropped, starting anew")
        if moved:
            node.get_logger().warn(f"the arm moved while {self.topic} was released ({', '.join(node.names[j] for j in moved)} "
                                   "farther than max_step from the held command): re-synced, holding where it stands")
