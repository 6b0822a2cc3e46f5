"""Bookkeeping of the simulated-delay protocol on a scripted chunk source (no policy involved)."""

from __future__ import annotations

import pytest
import torch

from rtc_ros.benchmarks.protocol import DelayConfig, executed_actions, pooled_wilson, run_delayed, wilson_interval
from rtc_ros.benchmarks.tasks.base import BatchedTask, TaskSpec


class RecordEnv(BatchedTask):
    """Envs that record what they receive; env ``i`` ends after ``ends[i]`` steps; obs = step."""

    spec = TaskSpec(name="record", obs_dim=1, act_dim=1, max_steps=40, dt=0.1, kind="test", modes="none")

    def __init__(self, n: int, ends: list[int] | None = None) -> None:
        super().__init__(n)
        self.ends = torch.tensor(ends if ends is not None else [self.spec.max_steps] * n)
        self.received: list[torch.Tensor] = []

    def _reset_state(self, gen: torch.Generator) -> None:
        self.received = []

    def step(self, action: torch.Tensor) -> torch.Tensor:
        self.received.append(action[:, 0].clone())  # before the clip to [-1, 1]
        return super().step(action)

    def _advance(self, action: torch.Tensor, active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros_like(active), self.ends <= self.t + 1

    def observe(self) -> torch.Tensor:
        return torch.full((self.n, 1), float(self.t))


class ScriptedSource:
    """Chunk ``k`` (k = 0 for the initial one) has value ``100 k + i`` at index ``i``."""

    def __init__(self, horizon: int) -> None:
        self.horizon, self.k = horizon, 0
        self.batch_sizes: list[int] = []
        self.obs_seen: list[float] = []

    def __call__(self, obs: torch.Tensor, prev: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(obs.shape[0])
        self.obs_seen.append(float(obs[0, 0]))
        chunk = 100.0 * self.k + torch.arange(self.horizon, dtype=torch.float32)
        self.k += 1
        return chunk[None, :, None].expand(obs.shape[0], -1, 1).clone()


def _run(H: int, d: int, s: int, n: int = 3, noise: float = 0.0, ensemble: bool = False, ends=None, seed: int = 0):
    env = RecordEnv(n, ends)
    src = ScriptedSource(H)
    res = run_delayed(env, src, src, DelayConfig(H, d, s), 1, seed, noise, ensemble=ensemble, record=True)
    return env, src, res


def expected_switch(H: int, d: int, s: int, steps: int) -> list[float]:
    """Reference: cycle c >= 1 starts at (c-1) s; first d actions from the previous chunk re-indexed."""
    out = []
    for t in range(steps):
        c, j = t // s + 1, t % s
        if j >= d:
            out.append(100.0 * c + j)
        elif c == 1:
            out.append(float(j))  # initial chunk, generated at step 0, not shifted
        else:
            out.append(100.0 * (c - 1) + min(s + j, H - 1))
    return out


@pytest.mark.parametrize("d,s", [(0, 1), (1, 1), (2, 2), (2, 3), (1, 7), (3, 5), (4, 4), (0, 8)])
def test_switch_executes_old_prefix_then_new(d: int, s: int) -> None:
    H = 8
    env, src, res = _run(H, d, s)
    got = res.executed[:, 0, 0].tolist()
    assert got == expected_switch(H, d, s, len(got))
    assert len(got) == env.spec.max_steps
    # the observation handed to cycle c is the one at step (c - 1) s
    assert src.obs_seen[1:] == [float(c * s) for c in range(len(src.obs_seen) - 1)]


def test_worked_example_d2_s3() -> None:
    _, _, res = _run(8, 2, 3)
    assert res.executed[:9, 0, 0].tolist() == [0, 1, 102, 103, 104, 202, 203, 204, 302]


def test_prefix_is_reindexed_and_padded_by_holding() -> None:
    H, d, s = 8, 2, 3
    _, _, res = _run(H, d, s)
    assert torch.equal(res.prefixes[0][0, :, 0], torch.arange(8.0))  # initial chunk, as generated
    for c in range(2, 5):  # prefix handed to cycle c = chunk c-1 from index s on, last action held
        want = torch.tensor([100.0 * (c - 1) + min(s + i, H - 1) for i in range(H)])
        assert torch.equal(res.prefixes[c - 1][0, :, 0], want)


@pytest.mark.parametrize("d,s", [(2, 1), (3, 6), (5, 5), (1, 0), (-1, 1), (0, 9)])
def test_infeasible_points_are_rejected(d: int, s: int) -> None:
    with pytest.raises(ValueError):
        DelayConfig(8, d, s)


def test_feasible_boundary_points() -> None:
    for d, s in [(0, 1), (0, 8), (4, 4), (1, 7), (3, 5)]:  # d <= s <= H - d holds with equality somewhere
        cfg = DelayConfig(8, d, s)  # raises if the check is too strict
        assert (cfg.horizon, cfg.d, cfg.s) == (8, d, s)


def test_executed_actions_slices() -> None:
    prev = (100 + torch.arange(8.0))[None, :, None]
    new = (200 + torch.arange(8.0))[None, :, None]
    assert executed_actions(prev, new, 2, 5)[0, :, 0].tolist() == [100, 101, 202, 203, 204]
    assert executed_actions(prev, new, 0, 3)[0, :, 0].tolist() == [200, 201, 202]
    assert executed_actions(prev, new, 3, 3)[0, :, 0].tolist() == [100, 101, 102]


def test_same_seed_same_noise_for_every_method() -> None:
    env_a, _, res_a = _run(8, 1, 2, noise=0.1, seed=3)
    env_b, _, res_b = _run(8, 3, 4, noise=0.1, seed=3)  # different bookkeeping, same seed
    na = torch.stack(env_a.received) - res_a.executed[:, :, 0]
    nb = torch.stack(env_b.received) - res_b.executed[:, :, 0]
    assert torch.allclose(na, nb, atol=1e-4)
    assert 0.07 < float(na.std()) < 0.13
    _, _, res_c = _run(8, 1, 2, noise=0.1, seed=4)
    assert not torch.allclose(na, torch.stack(_run(8, 1, 2, noise=0.1, seed=4)[0].received) - res_c.executed[:, :, 0])


def test_done_envs_leave_the_model_batch() -> None:
    env, src, res = _run(8, 1, 2, n=3, ends=[4, 10, 40])
    # cycles start at steps 0, 2, 4, ...; env 0 is done after 4 steps, env 1 after 10
    assert src.batch_sizes[1:4] == [3, 3, 2]
    assert src.batch_sizes[6] == 1
    assert res.length.tolist() == [4, 10, 40]
    assert res.env_rows == sum(src.batch_sizes[1:])


def _expected_ensemble(H: int, d: int, s: int, steps: int) -> list[float]:
    """Brute force: average of chunks that started at or before t, arrived (start + d, the initial
    chunk at 0) by t, and still cover t."""
    chunks = [(0, 0, 0)]  # (k, start, arrival)
    for c in range(1, steps // s + 2):
        chunks.append((c, (c - 1) * s, (c - 1) * s + d))
    out = []
    for t in range(steps):
        vals = [100.0 * k + (t - st) for k, st, ar in chunks if st <= t < st + H and ar <= t]
        out.append(sum(vals) / len(vals))
    return out


@pytest.mark.parametrize("d,s", [(0, 1), (1, 1), (2, 2), (1, 3), (2, 4)])
def test_temporal_ensembling_averages_arrived_chunks(d: int, s: int) -> None:
    _, _, res = _run(8, d, s, ensemble=True)
    got = res.executed[:, 0, 0]
    want = torch.tensor(_expected_ensemble(8, d, s, got.shape[0]))
    assert torch.allclose(got, want, atol=1e-4)


def test_wilson_interval_known_values() -> None:
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(2048, 2048)
    assert hi == pytest.approx(1.0) and lo > 0.998
    assert pooled_wilson([0.5, 0.5], 10) == pytest.approx(wilson_interval(10, 20))
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_bid_batching_benchmark_computes_both_networks() -> None:
    """The batched call of rtc_ros.benchmarks.bid_batching evaluates exactly the two networks (index 0 the
    strong, 1 the weak one); the timing helper returns its keys and refuses bad sizes."""
    from rtc_ros.benchmarks.bid_batching import stacked_velocity, time_pair
    from rtc_ros.policies.mixer import MixerConfig, MLPMixerPolicy

    torch.manual_seed(0)
    cfg = MixerConfig(horizon=8, action_dim=2, obs_dim=4, width=16, depth=1, token_hidden=8, channel_hidden=16,
                      time_dim=8)
    strong, weak = MLPMixerPolicy(cfg).eval(), MLPMixerPolicy(cfg).eval()
    with torch.no_grad():
        for m in (strong, weak):
            for p in m.parameters():
                p.normal_(0, 0.3)
    a, o, t = torch.randn(2, 5, 8, 2), torch.randn(2, 5, 4), torch.rand(2, 5)
    with torch.no_grad():
        out = stacked_velocity(strong, weak)(a, o, t)
        assert torch.allclose(out[0], strong(a[0], o[0], t[0]), atol=1e-5)
        assert torch.allclose(out[1], weak(a[1], o[1], t[1]), atol=1e-5)
        assert not torch.allclose(out[0], out[1], atol=1e-3)
    r = time_pair(strong, weak, rows=16, repeats=1)
    assert set(r) == {"separate_ms", "batched_ms", "batched_over_separate"} and r["separate_ms"] > 0
    with pytest.raises(ValueError, match="rows"):
        time_pair(strong, weak, rows=0, repeats=1)
