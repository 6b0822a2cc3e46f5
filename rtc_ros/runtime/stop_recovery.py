"""Re-sync the executor around a robot's protective stop (ROS-free rule, one code path for node and harness).

A protective stop (a velocity, torque or collision limit tripped in the robot's own controller) makes
an arm hold where it is and ignore commands for a while. An executor that keeps stepping through its
chunk meanwhile has, when the stop clears, a last command far from where the arm stands: the next
command is a jump, which trips the next stop (a *stop loop*; measured in the simulated ViperX,
``docs/sim_experiment.md``). A robot program recovers by starting again from where the arm is.

:class:`StopRecovery` does that with the executor's re-sync (:meth:`ExecutorCore.resync
<rtc_ros.runtime.executor.ExecutorCore.resync>`), driven by one report per update, *the joints held
by a stop and the positions they are held at* (``{action index: position}``, empty while nothing is
stopped; the sim's ``robot_stopped`` topic, a ``sensor_msgs/JointState``; on a real robot whatever
reports its protective-stop state per arm, bridged to that message):

* **stop begins** (nothing held -> something held): re-sync keeping the hold -- every chunk is dropped
  (a chunk computed from an observation before it is refused, reason ``resync``) and the executor
  holds, paused, so nothing advances while an arm cannot follow. The held joints' commands become
  the positions the stop holds them at; every other joint keeps its last command (the arm that did
  not stop stays where it was told: a gripper keeps squeezing).
* **while stopped**: a change in what is held (the other arm stops too) updates those commands.
* **stop ends** (something held -> nothing held): re-sync again, keeping that hold, and resume. The
  first command after the stop is therefore where the stopped arm stands -- also when the report of
  the stop's end arrives a tick or two late, as it does over DDS (the previous rule, holding the
  last command during the stop and measuring the pose only after its end, sent the command that
  had tripped the stop again in those ticks; measured in the live demo, 2026-12-03). The next chunk is a
  start-up chunk: it starts at its index 0, observed after the stop (and is ramped in, see
  ``startup_ramp`` in :mod:`rtc_ros.runtime.executor`).

Whether it resumes: as decided when the stop began (not if the executor was already paused: an
operator's pause is kept), unless an operator changed that during the stop (:meth:`StopRecovery.request`:
the node's ``~/pause`` / ``~/resume`` while stopped) or someone else re-synced meanwhile (an episode
reset: whoever did it resumes). Someone who *resumed* the executor during the stop is obeyed at its end.

If no command is held when the stop ends (someone re-synced meanwhile and the measured position has
not come yet), the caller gives the measured position (``set_measured_position``) as after any
re-sync. A stop that begins and ends between two updates is missed: feed the report at least as
often as the robot's stop lasts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rtc_ros.runtime.executor import ExecutorCore

#: what :meth:`StopRecovery.update` did
STOP_BEGAN = "stop_began"
STOP_ENDED = "stop_ended"


class StopRecovery:
    """The rule of the module docstring for one executor core.

    Attributes:
        stopped: whether joints were held at the last update. held: those joints (action index ->
            held position). stops: stops seen (rising edges). recoveries: stops that ended.
    """

    def __init__(self) -> None:
        self.stopped = False
        self.held: dict[int, float] = {}
        self.stops = 0  # stop periods begun: an arm stopped while another is held extends the period (the robot's
        # own count can be higher: the simulator counts each arm's)
        self.recoveries = 0
        self._resume = False
        self._resyncs = -1  # core.stats.resyncs after our re-sync at the stop's beginning
        self._operator = False  # an operator's request during the stop decides whether to resume
        self._prior = ""  # the executor's pause reason when the stop began (paused before it), else ''

    @property
    def will_resume(self) -> bool:
        """During a stop: the executor resumes by itself when it ends (it was not paused before it, and no operator
        asked for a pause during it); the operator's ``~/resume`` is needed otherwise."""
        return self.stopped and self._resume

    def request(self, resume: bool) -> bool:
        """An operator's ``pause`` (False) / ``resume`` (True) while the robot is stopped: applied when the
        stop ends (the executor stays paused until then). Returns False (nothing done) when not stopped."""
        if not self.stopped:
            return False
        self._resume = bool(resume)
        self._operator = True
        return True

    def update(self, held: Mapping[int, float], core: ExecutorCore, stopped: bool | None = None) -> str | None:
        """Feed the robot's current stop report: the joints a stop holds, ``{action index: held position}``
        (empty: none). Re-syncs (and resumes) ``core`` when a stop begins or ends. ``stopped`` (default:
        ``bool(held)``) True with nothing in ``held``: a stop whose joints or positions cannot be read (a
        malformed report, or one naming none of the executor's joints): every joint keeps its last command
        until a report says nothing is stopped (fail safe: never commanding through a stop).

        Returns:
            :data:`STOP_BEGAN` or :data:`STOP_ENDED` when it re-synced ``core`` (after STOP_ENDED, give
            the measured position if ``core.ready`` is False), else None.
        """
        held = {int(j): float(q) for j, q in held.items()}
        stopped = bool(held) if stopped is None else bool(stopped) or bool(held)
        if stopped == self.stopped:
            if stopped and held != self.held:  # another arm stopped (or was released) meanwhile
                self.held = held
                core.hold_joints(held)
            return None
        self.stopped, self.held = stopped, held
        if stopped:
            self._resume, self._operator = not core.paused, False
            self._prior = core.pause_reason if core.paused else ""  # (paused before it: said again at its end)
            core.resync(keep_hold=True, why="a protective stop")
            core.hold_joints(held)
            self._resyncs = core.stats.resyncs
            self.stops += 1
            return STOP_BEGAN
        resumed_meanwhile = not core.paused  # someone resumed it during the stop: keep it running
        foreign = core.stats.resyncs != self._resyncs  # re-synced by someone else (e.g. an episode reset)
        why = core.pause_reason  # an operator's re-sync during the stop, else the stop or what paused it before
        if why == "a protective stop":
            why = "~/pause" if self._operator and not self._resume else (self._prior or why)
        core.resync(keep_hold=True, why=why)  # always: nothing planned during it runs (the reason: a pause from before
        # the stop, an operator's pause or re-sync during it, else the stop)
        if resumed_meanwhile or (self._resume and (self._operator or not foreign)):
            core.resume()
        self.recoveries += 1
        return STOP_ENDED
