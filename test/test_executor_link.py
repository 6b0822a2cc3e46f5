"""policy_inference's check that the executor's reports come (rtc_ros.nodes.executor_link), ROS-free."""

from __future__ import annotations

from rtc_ros.nodes.executor_link import FIRST_REPORT_S, REPORT_GAP_S, ExecutorLink


def test_silence_before_the_first_report_names_the_topic_and_whether_anyone_publishes_it() -> None:
    publishers = {"/robot1/rtc/executor_state": 0}
    link = ExecutorLink("/robot1/rtc/executor_state", publishers.__getitem__, started=100.0)
    assert link.silence(0.0, 100.0 + FIRST_REPORT_S) is None  # starting: give discovery its time
    text = link.silence(0.0, 100.0 + FIRST_REPORT_S + 0.5)
    assert text.startswith("no /robot1/rtc/executor_state received in 2 s") and "nobody publishes it" in text
    publishers["/robot1/rtc/executor_state"] = 1
    assert "although 1 node(s) publish it: chunk_executor reports once it has a hold position" in link.silence(0.0, 103.0)
    publishers["/robot1/rtc/executor_state"] = 2
    assert "2 nodes publish it: several executors" in link.silence(0.0, 103.0)


def test_silence_after_reports_stop() -> None:
    link = ExecutorLink("/rtc/executor_state", lambda _t: 1, started=0.0)
    assert link.silence(50.0, 50.0 + REPORT_GAP_S) is None  # a report every tick: a second is a long gap
    assert link.silence(50.0, 52.5) == ("the newest /rtc/executor_state is 2.5 s old (the executor stopped, waits "
                                        "for joint states after a re-sync, is muted by another publisher on its outputs, or the "
                                        "network to it failed?)")
