"""Re-sync the executor around a robot's protective stop (ROS-free rule, one code path for node and harness).

A protective stop (a velocity, torque or collision limit tripped in the robot's own controller) makes
the arm hold where it is and ignore commands for a while. An executor that keeps stepping through its
chunk meanwhile has, when the stop clears, a last command far from where the arm stands: the next
command is a jump, which trips the next stop (a *stop loop*; measured in the simulated ViperX,
``docs/sim_experiment.md``). A robot program recovers by starting again from where the arm is.

:class:`StopRecovery` does that with the executor's re-sync (:meth:`ExecutorCore.resync
<rtc_ros.runtime.executor.ExecutorCore.resync>`), driven by one boolean per update, *the robot is
stopped* (the sim's ``robot_stopped`` topic; on a real robot whatever reports its protective-stop
or safety state, bridged to ``std_msgs/Bool``):

* **stop begins** (False -> True): re-sync keeping the hold -- every chunk is dropped (a chunk computed
  from an observation before it is refused, reason ``resync``) and the executor holds its last command,
  paused, so nothing advances while the arm cannot follow (the arm that did not stop keeps its command:
  a gripper keeps squeezing);
* **stop ends** (True -> False): re-sync again, this time from the measured position (the stopped arm
  holds where it stopped, or was moved by hand meanwhile), and resume. The next chunk is a start-up
  chunk: it starts at its index 0 from rest, observed after the stop (and is ramped in, see
  ``startup_ramp`` in :mod:`rtc_ros.runtime.executor`).

Whether it resumes: as decided when the stop began (not if the executor was already paused: an
operator's pause is kept), unless an operator changed that during the stop (:meth:`StopRecovery.request`:
the node's ``~/pause`` / ``~/resume`` while stopped) or someone else re-synced meanwhile (an episode
reset: whoever did it resumes). Someone who *resumed* the executor during the stop is obeyed at its end.

The caller gives the measured position after a stop ended (``set_measured_position``; the node takes
the first joint state stamped after it). A stop that begins and ends between two updates is missed:
feed the flag at least as often as the robot's stop lasts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rtc_ros.runtime.executor import ExecutorCore

#: what :meth:`StopRecovery.update` did
STOP_BEGAN = "stop_began"
STOP_ENDED = "stop_ended"


class StopRecovery:
    """The rule of the module docstring for one executor core.

    Attributes:
        stopped: the last flag seen. stops: stops seen (rising edges). recoveries: stops that ended.
    """

    def __init__(self) -> None:
        self.stopped = False
        self.stops = 0
        self.recoveries = 0
        self._resume = False
        self._resyncs = -1  # core.stats.resyncs after our re-sync at the stop's beginning
        self._operator = False  # an operator's request during the stop decides whether to resume

    def request(self, resume: bool) -> bool:
        """An operator's ``pause`` (False) / ``resume`` (True) while the robot is stopped: applied when the
        stop ends (the executor stays paused until then). Returns False (nothing done) when not stopped."""
        if not self.stopped:
            return False
        self._resume = bool(resume)
        self._operator = True
        return True

    def update(self, stopped: bool, core: ExecutorCore) -> str | None:
        """Feed the robot's current stop flag; re-syncs (and resumes) ``core`` on a change.

        Returns:
            :data:`STOP_BEGAN` (holding its last command) or :data:`STOP_ENDED` (give it the measured
            position next) when it re-synced ``core``, else None.
        """
        stopped = bool(stopped)
        if stopped == self.stopped:
            return None
        self.stopped = stopped
        if stopped:
            self._resume, self._operator = not core.paused, False
            core.resync(keep_hold=True)
            self._resyncs = core.stats.resyncs
            self.stops += 1
            return STOP_BEGAN
        resumed_meanwhile = not core.paused  # someone resumed it during the stop: keep it running
        foreign = core.stats.resyncs != self._resyncs  # re-synced by someone else (e.g. an episode reset)
        core.resync()  # always: the arm stands where it stopped, not where anything was commanded since
        if resumed_meanwhile or (self._resume and (self._operator or not foreign)):
            core.resume()
        self.recoveries += 1
        return STOP_ENDED
