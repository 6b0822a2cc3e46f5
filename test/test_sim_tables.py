"""The simulated-time experiment's tables come from the shipped results.json (docs cannot drift from it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtc_ros.experiments.sim_tables import combine, load, main, task_tables

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "sim_experiment" / "results.json"


def _rows(lines: list[str]) -> list[str]:
    return [ln for ln in lines if ln.startswith("| ") and not ln.startswith("| method")]


def _section(text: str, task: str, tasks: list[str]) -> str:
    """``text`` from the task's bold heading line to the next other task's heading (or the end)."""
    start = text.index(f"\n**{task}**")
    ends = [text.find(f"\n**{t}**", start + 1) for t in tasks if t != task]
    return text[start:min([e for e in ends if e > 0], default=len(text))]


def test_every_table_row_in_the_docs_comes_from_the_shipped_results() -> None:
    res = load(RESULTS)
    doc = (ROOT / "docs" / "sim_experiment.md").read_text()
    readme = (ROOT / "README.md").read_text()
    tasks = list(res["runs"])
    assert set(tasks) == {"transfer_cube", "conveyor_cube"}
    for task in tasks:
        rows = _rows(task_tables(res, task))
        assert len(rows) >= 16, task  # cells, success and throughput differences: 6 + 5 + 5 methods
        for name, text in (("docs/sim_experiment.md", doc), ("README.md", readme)):
            section = _section(text, task, tasks)
            missing = [r for r in rows[:16] if r not in section]
            assert not missing, f"{name}'s {task} section lacks rows: {missing[:3]}"
        switch_rows = rows[16:]  # where the run counted switches at the step limit
        missing = [r for r in switch_rows if r not in _section(doc, task, tasks)]
        assert not missing, f"docs/sim_experiment.md's {task} section lacks switch rows: {missing[:3]}"


def test_tables_and_combine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = load(RESULTS)
    task = "transfer_cube"
    one = {"config": {"x": 1}, **{k: [r for r in res[k] if r["task"] == task] for k in ("cells", "differences", "episodes")}}
    cell = next(c for c in one["cells"] if c["method"] == "rtc" and c["latency_ms"] == 0.0)
    cell.update(successes=7, n=9, success_ci95=[0.25, 0.5], throughput=12.345, episodes_with_stops=3, delay_ticks=2,
                switches=200, switches_at_step_limit=5, switch_step_limit_ci95=[0.01, 0.06], switches_at_step_limit_own=1)
    lines = task_tables(one, task)
    assert "| rtc | 7/9 [0.25-0.50], 12.3, 3 (d=2) |" in "\n".join(lines)
    assert "| rtc | 2.5 % [1.0-6.0] (5/200; own 1) |" in "\n".join(lines)
    cell.update(standstill_s=0.25, splice_jerk=13987.6, acc_rms=4.84)  # the motion table (the standstill, jerk)
    assert "| rtc | 0.25 s (0.03), 13988, 4.8 |" in "\n".join(task_tables(one, task))  # (the waiting part: its episodes)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(one))
    b.write_text(json.dumps({"cells": [], "differences": [], "episodes": []}))
    out = tmp_path / "combined.json"
    assert main([str(a), str(b), "--combine", str(out), "--measured", "today"]) == 0
    combined = json.loads(out.read_text())
    assert combined["runs"] == {task: {"config": {"x": 1}}} and combined["measured"] == "today"
    assert combined["episodes"] == one["episodes"] and f"**{task}**" in capsys.readouterr().out
    with pytest.raises(ValueError, match="two of the runs"):
        combine([one, one], "")
    (tmp_path / "bad.json").write_text(json.dumps({"cells": []}))
    for bad in ("[]", "{", json.dumps({"cells": [{}], "differences": [], "episodes": []})):
        (tmp_path / "bad.json").write_text(bad)
        assert main([str(tmp_path / "bad.json")]) == 2
        assert "bad.json" in capsys.readouterr().err
    assert main([str(a), "--combine", str(tmp_path / "no_such_dir" / "c.json")]) == 2
    assert "no_such_dir" in capsys.readouterr().err
    again = combine([combined], "")  # an already combined file keeps each task's run
    assert again["runs"] == combined["runs"]


def test_shipped_differences_are_recomputed_from_the_shipped_episodes() -> None:
    """``results.json``'s differences are what the current statistics give on its own episodes (success:
    Newcombe's paired interval with the discordant pairs; throughput: the seeded bootstrap)."""
    from rtc_ros.experiments.sim_tables import recompute_differences

    res = load(RESULTS)
    again = recompute_differences(res)["differences"]
    key = lambda d: (d["task"], d["latency_ms"], d["method"], d["metric"])  # noqa: E731
    assert sorted(map(key, again)) == sorted(map(key, res["differences"]))
    shipped = {key(d): d for d in res["differences"]}
    for d in again:
        s = shipped[key(d)]
        assert s["interval"] == d["interval"] and s["n_pairs"] == d["n_pairs"] == 30
        assert [s["difference"], *s["ci95"]] == pytest.approx([d["difference"], *d["ci95"]], abs=1e-12)
        if d["metric"] == "success":
            assert s["discordant"] == d["discordant"] and d["ci95"][0] < d["ci95"][1]  # never [0, 0]


def test_missing_numbers_and_partial_pairing_are_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A difference without a number (no common seed: null in JSON) prints '-', not a crash; one over
    fewer seeds than the method's cell says how many."""
    cells = [{"task": "t", "method": m, "latency_ms": 0.0, "delay_ticks": 1, "n": n, "successes": 1,
              "success_ci95": [0.1, 0.9], "throughput": 1.0} for m, n in (("rtc", 10), ("naive", 30), ("sync", 5))]
    diffs = [{"task": "t", "method": "naive", "latency_ms": 0.0, "metric": "success", "n_pairs": 10,
              "difference": 0.5, "ci95": [0.2, 0.7]},
             {"task": "t", "method": "sync", "latency_ms": 0.0, "metric": "success", "n_pairs": 0,
              "difference": None, "ci95": [None, None]}]
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"cells": cells, "differences": diffs, "episodes": []}))
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "| naive | +0.50 [+0.20, +0.70] (n = 10) |" in out and "| sync | - [-, -] (n = 0) |" in out
    # an audit: the reference's cell with more episodes than the pairs went unmarked (only the method's was compared)
    from rtc_ros.experiments.sim_tables import diff_text

    both = {("rtc", 0.0): {"n": 5}, ("naive", 0.0): {"n": 4}}
    row = {"method": "naive", "latency_ms": 0.0, "n_pairs": 4, "difference": 0.25, "ci95": [0.0, 0.5]}
    assert diff_text(row, 2, both).endswith("(n = 4)")
    assert not diff_text(row, 2, {("rtc", 0.0): {"n": 4}, ("naive", 0.0): {"n": 4}}).endswith(")")
    assert diff_text({**row, "n_a": 4, "n_b": 5}, 2).endswith("(n = 4)")  # a live row carries its sides' counts


def test_live_difference_tables_in_the_docs_come_from_the_run() -> None:
    """docs/sim_experiment.md's live-ROS difference tables are ``live_results --table`` on the shipped run."""
    from rtc_ros.experiments.live_results import difference_tables

    lines = difference_tables(ROOT / "docs" / "sim_experiment" / "ros_2026-12-03" / "results.json")
    doc = (ROOT / "docs" / "sim_experiment.md").read_text()
    rows = _rows(lines)
    assert len(rows) == 10
    missing = [r for r in rows if r not in doc]
    assert not missing, missing[:3]


def _same(a, b) -> bool:
    """JSON-equal, floats to 1e-9 (NaN is written as null)."""
    import math

    if isinstance(a, float) and math.isnan(a):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def test_shipped_cells_are_recomputed_from_the_shipped_episodes() -> None:
    """The published cells (successes, Wilson interval, throughput, stops, switches ...) are what
    ``summarize_cells`` gives on the shipped episodes: episodes -> cells -> docs has no unchecked link."""
    import dataclasses

    from rtc_ros.experiments.sim_experiment import summarize_cells
    from rtc_ros.experiments.sim_offline import EpisodeRecord

    res = load(RESULTS)
    names = {f.name for f in dataclasses.fields(EpisodeRecord)}
    records = [EpisodeRecord(**{k: v for k, v in e.items() if k in names}) for e in res["episodes"]]
    key = lambda c: (c["task"], c["method"], float(c["latency_ms"]))  # noqa: E731
    shipped = {key(c): c for c in res["cells"]}
    again = summarize_cells(records)
    assert sorted(map(key, again)) == sorted(shipped)
    for cell in again:
        diff = [k for k in cell if not _same(cell[k], shipped[key(cell)].get(k))]
        assert not diff, (key(cell), diff[:5])
