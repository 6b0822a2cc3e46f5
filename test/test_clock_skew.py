"""ClockAhead: a sensor clock ahead of the executor's is told apart from the usual latencies (ROS-free)."""

from __future__ import annotations

import numpy as np
import pytest

from rtc_ros.runtime.clock_skew import ClockAhead, ahead_text

MS = 1_000_000


def _run(skew_ms: float, seed: int = 0, ticks: int = 500) -> ClockAhead:
    """50 Hz executor reports reaching the policy node 0.5-30 ms late (now and then 80 ms: a callback run late),
    a 100 Hz sensor stamped on a clock ``skew_ms`` ahead of the executor's and received 0.2-20 ms after
    capture. The policy node's own clock is 3 s off both (it only measures durations)."""
    rng = np.random.default_rng(seed)
    c = ClockAhead(0.02)
    own = 3_000 * MS  # the policy node's clock minus the executor's
    events = []
    for k in range(ticks):
        t = k * 20 * MS
        delay = (80 if rng.random() < 0.05 else rng.uniform(0.5, 30)) * MS
        events.append((t + delay, "report", t))
    for j in range(2 * ticks):
        t = j * 10 * MS
        events.append((t + rng.uniform(0.2, 20) * MS, "sensor", t + int(skew_ms * MS)))
    for arrival, kind, stamp in sorted(events):
        if kind == "report":
            c.on_report(int(stamp), int(arrival + own))
        else:
            c.lead_s(int(stamp), int(arrival + own))
    return c


def test_clocks_in_sync_are_not_ahead() -> None:
    for seed in range(20):
        c = _run(0.0, seed)
        assert c.ahead == 0 and c.take_worst() == 0.0


def test_a_clock_ahead_is_counted_with_its_lead() -> None:
    c = _run(100.0)
    assert c.ahead > 850  # nearly every stamp (none in the first second: 50 reports first)
    assert 0.080 <= c.take_worst() <= 0.105  # the lead less a sensor latency, plus the least report delay
    assert c.take_worst() == 0.0  # per period
    assert _run(10.0).ahead == 0  # within the tolerance (20 ms): jitter


def test_no_report_no_verdict_and_a_bad_tolerance() -> None:
    c = ClockAhead(0.02, reports=2)
    assert c.lead_s(5 * MS, 0) is None
    c.on_report(0, 0)  # unstamped reports carry nothing
    c.on_report(100 * MS, 90 * MS)
    assert c.lead_s(150 * MS, 100 * MS) is None  # one report: it may have been late
    c.on_report(120 * MS, 111 * MS)
    assert c.lead_s(150 * MS, 100 * MS) == pytest.approx(0.040)  # the less delayed of the two (offset +10 ms)
    with pytest.raises(ValueError, match="tolerance_s"):
        ClockAhead(0.0)
    assert "joint_states is stamped 40 ms ahead" in ahead_text("joint_states", 0.04)
