"""The recorder's derived metadata (ROS-free): policy-spec hashes and the injected-latency key."""

from __future__ import annotations

import hashlib
from pathlib import Path

from rtc_ros.recording.metadata import describe_policy_spec, fill_derived


def test_describe_policy_spec_hashes_weights_and_normalization(tmp_path: Path) -> None:
    (tmp_path / "demo.safetensors").write_bytes(b"weights")
    (tmp_path / "demo.norm.safetensors").write_bytes(b"statistics")
    spec = tmp_path / "demo.yaml"
    spec.write_text("name: demo\nweights: demo.safetensors\nnormalization: demo.norm.safetensors\n")
    out = describe_policy_spec(str(spec))
    assert out["sha256"] == hashlib.sha256(spec.read_bytes()).hexdigest()
    assert out["weights_sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert out["normalization_sha256"] == hashlib.sha256(b"statistics").hexdigest()
    # the statistics change, the recorded hash changes with them
    (tmp_path / "demo.norm.safetensors").write_bytes(b"other statistics")
    assert describe_policy_spec(str(spec))["normalization_sha256"] == hashlib.sha256(b"other statistics").hexdigest()


def test_a_policy_spec_given_as_an_environment_variable_is_described(tmp_path: Path, monkeypatch) -> None:
    """bimanual.launch.py passes policy_spec: ${RTC_POLICY_SPEC}; the recorder took it literally and wrote no hashes
    ('not readable from the recorder's machine') although the file was beside it (a two-robot walkthrough)."""
    spec = tmp_path / "p.yaml"
    spec.write_text("name: p\n")
    monkeypatch.setenv("RTC_POLICY_SPEC", str(spec))
    out = describe_policy_spec("${RTC_POLICY_SPEC}")
    assert out["path"] == str(spec) and out["sha256"] == hashlib.sha256(spec.read_bytes()).hexdigest()
    monkeypatch.delenv("RTC_POLICY_SPEC")
    assert describe_policy_spec("${RTC_POLICY_SPEC}")["error"] == "not readable from the recorder's machine"


def test_describe_policy_spec_without_or_with_missing_normalization(tmp_path: Path) -> None:
    spec = tmp_path / "old.yaml"
    spec.write_text("name: old\nnormalization: {obs_mean: [0.0]}\n")  # an old inline spec: nothing to hash
    assert "normalization_sha256" not in describe_policy_spec(str(spec))
    spec.write_text("name: gone\nnormalization: gone.norm.safetensors\n")
    out = describe_policy_spec(str(spec))
    assert "normalization_sha256" in out and out["normalization_sha256"] is None


def _meta(op: dict[str, object]) -> dict[str, object]:
    meta: dict[str, object] = {**op, "operator_meta": dict(op),
                               "params": {"policy_inference": {"method": "rtc", "extra_latency_ms": 100.0}}}
    fill_derived(meta)
    return meta


def test_fill_derived_writes_extra_latency_ms() -> None:
    meta = _meta({})
    assert meta["extra_latency_ms"] == 100.0 and "injected_latency_ms" not in meta
    assert _meta({"extra_latency_ms": 200})["extra_latency_ms"] == 200  # the operator's value wins


def test_fill_derived_accepts_the_legacy_operator_key() -> None:
    meta = _meta({"injected_latency_ms": 200})
    assert meta["extra_latency_ms"] == 200.0


def test_episode_reads_old_bags_latency_key(tmp_path: Path) -> None:
    from rtc_ros.recording.episode import Episode

    def ep(meta: dict[str, object]) -> Episode:
        return Episode(name="e", path=tmp_path, meta=meta, start_ns=0, end_ns=0)

    assert ep({"extra_latency_ms": 100.0}).extra_latency_ms == 100.0
    assert ep({"injected_latency_ms": 200}).extra_latency_ms == 200.0  # a bag recorded before the rename
    assert ep({}).extra_latency_ms == 0.0


def test_a_file_is_hashed_once_until_it_changes(tmp_path: Path, monkeypatch) -> None:
    """The recorder describes the policy 2-3 times per episode; a VLA's weights (GBs) are read once, not each
    time, and hashed again when the file changes."""
    import os

    import rtc_ros.recording.metadata as md

    f = tmp_path / "w.safetensors"
    f.write_bytes(b"a" * 1000)
    want_a, want_b = hashlib.sha256(b"a" * 1000).hexdigest(), hashlib.sha256(b"b" * 1000).hexdigest()
    reads = []
    real = md.hashlib.sha256
    monkeypatch.setattr(md.hashlib, "sha256", lambda *a: (reads.append(1), real(*a))[1])
    assert md.sha256_file(f) == md.sha256_file(f) == want_a and len(reads) == 1
    f.write_bytes(b"b" * 1000)
    os.utime(f, ns=(1, 1))  # even with a clock that did not move on, the changed mtime is a new file state
    assert md.sha256_file(f) == want_b and len(reads) == 2
    assert md.sha256_file(tmp_path / "missing") is None
