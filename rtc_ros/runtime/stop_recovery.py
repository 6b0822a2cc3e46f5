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

* **stop begins** (False -> True): re-sync -- every chunk is dropped (a chunk computed from an
  observation before it is refused, reason ``resync``), the executor holds the next measured position,
  paused, so nothing advances while the arm cannot follow;
* **stop ends** (True -> False): re-sync again (the hold position is measured anew: the arm may have
  been moved while stopped, e.g. pushed back by hand) and resume. The next chunk is a start-up chunk:
  it starts at its index 0 from rest, observed after the stop. Nothing is done if someone else
  re-synced the executor during the stop (an episode reset, a homing move: whoever did it resumes),
  and it is not resumed if it was already paused when the stop began (an operator's pause is kept).

The caller gives the measured position after each re-sync (``set_measured_position``; the node takes
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

    def update(self, stopped: bool, core: ExecutorCore) -> str | None:
        """Feed the robot's current stop flag; re-syncs (and resumes) ``core`` on a change.

        Returns:
            :data:`STOP_BEGAN` or :data:`STOP_ENDED` when it re-synced ``core`` (give it the measured
            position next), else None.
        """
        stopped = bool(stopped)
        if stopped == self.stopped:
            return None
        self.stopped = stopped
        if stopped:
            self._resume = not core.paused
            core.resync()
            self._resyncs = core.stats.resyncs
            self.stops += 1
            return STOP_BEGAN
        if core.stats.resyncs != self._resyncs:
            return None  # re-synced by someone else meanwhile: theirs to resume
        core.resync()
        if self._resume:
            core.resume()
        self.recoveries += 1
        return STOP_ENDED
