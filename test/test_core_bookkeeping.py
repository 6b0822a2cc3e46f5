"""Prefix re-indexing, chunk buffer splicing, delay forecast, schedule, TE and BID."""

import numpy as np
import pytest
import torch

from rtc_ros.core.bid import bid_sample
from rtc_ros.core.chunk_buffer import ChunkBuffer, ChunkRejected
from rtc_ros.core.delay import DelayForecaster, latency_to_steps
from rtc_ros.core.ensemble import TemporalEnsembler
from rtc_ros.core.masks import prefix_weights
from rtc_ros.core.methods import executor_mode
from rtc_ros.core.prefix import build_prefix
from rtc_ros.core.schedule import InfeasibleDelay, check_sim_protocol, execution_horizon


def _chunk(start: float, H: int = 8, M: int = 2) -> np.ndarray:
    return np.stack([np.full(M, start + i) for i in range(H)])


def test_build_prefix_holds_last_action_numpy_and_torch():
    prev = _chunk(0.0)
    y = build_prefix(prev, 3)
    assert y[:, 0].tolist() == [3, 4, 5, 6, 7, 7, 7, 7]
    yt = build_prefix(torch.from_numpy(prev)[None], 3)
    assert yt.shape == (1, 8, 2) and yt[0, :, 0].tolist() == [3, 4, 5, 6, 7, 7, 7, 7]
    assert build_prefix(prev, 8)[:, 0].tolist() == [7] * 8  # s = H: nothing remains, hold the last
    with pytest.raises(ValueError):
        build_prefix(prev, 9)


def test_chunk_buffer_splices_at_consumed_delay():
    buf = ChunkBuffer(8, 2)
    buf.insert(_chunk(0.0), t_obs=0, now=0, seq=0)
    assert buf.action_at(0)[0] == 0 and buf.action_at(4)[0] == 4
    # Chunk observed at step 3 arrives at step 5: steps 3, 4 ran from the old chunk.
    info = buf.insert(_chunk(100.0), t_obs=3, now=5, seq=1, frozen=2)
    assert info.consumed_delay == 2 and info.takeover_step == 5 and info.frozen == 2
    assert info.jump == pytest.approx(abs(102 - 5))
    assert buf.action_at(5)[0] == 102  # index 2 of the new chunk, nothing re-executed or skipped
    assert buf.action_at(10)[0] == 107
    assert buf.action_at(11) is None  # exhausted -> the executor holds
    assert buf.remaining(9)[:, 0].tolist() == [106, 107]


def test_chunk_buffer_copies_out():
    buf = ChunkBuffer(8, 2)
    c = _chunk(0.0)
    buf.insert(c, 0, 0, 0)
    c[:] = 99
    a = buf.action_at(1)
    a[:] = -1
    assert buf.action_at(1)[0] == 1


@pytest.mark.parametrize(
    "chunk,t_obs,now,seq,match",
    [
        (np.full((8, 2), np.nan), 0, 0, 1, "NaN"),
        (np.zeros((7, 2)), 0, 0, 1, "shape"),
        (np.zeros((8, 2)), 0, 8, 1, "stale"),
        (np.zeros((8, 2)), 5, 4, 1, "ahead"),
        (np.zeros((8, 2)), 0, 0, 0, "not newer"),
    ],
)
def test_chunk_buffer_rejects(chunk, t_obs, now, seq, match):
    buf = ChunkBuffer(8, 2)
    buf.insert(_chunk(0.0), 0, 0, seq=0)
    with pytest.raises(ChunkRejected, match=match):
        buf.insert(chunk, t_obs, now, seq)
    assert buf.action_at(1)[0] == 1  # the old chunk is untouched


def test_delay_forecaster_max_of_last_b_excluding_cold_start():
    f = DelayForecaster(buffer_size=3, initial_delay=2, exclude_first=1)
    assert f.forecast() == 2
    f.record(40)  # cold start (compile), dropped
    f.record(9, warmup=True)
    assert f.forecast() == 2
    for d in (3, 5, 4):
        f.record(d)
    assert f.forecast() == 5
    f.record(3)
    f.record(3)
    assert f.forecast() == 4
    f.record(3)
    assert f.forecast() == 3  # forgets: not a running max
    with pytest.raises(ValueError):
        DelayForecaster(buffer_size=0)
    assert latency_to_steps(0.099, 0.02) == 4 and latency_to_steps(0.1, 0.02) == 5


def test_execution_horizon_rule():
    assert execution_horizon(6, 25, 50) == 25
    assert execution_horizon(30, 10, 60) == 30
    with pytest.raises(InfeasibleDelay):
        execution_horizon(30, 25, 50)
    with pytest.raises(ValueError):
        execution_horizon(1, 0, 50)
    check_sim_protocol(2, 3, 8)
    with pytest.raises(ValueError):
        check_sim_protocol(3, 2, 8)
    with pytest.raises(ValueError):
        check_sim_protocol(3, 6, 8)


def test_temporal_ensembler_averages_overlapping_predictions():
    te = TemporalEnsembler(horizon=4)
    assert te.action(0) is None
    te.add(np.arange(4.0)[:, None], start_step=0)  # predicts 0,1,2,3 for steps 0..3
    te.add(np.arange(4.0)[:, None] + 10, start_step=2)  # predicts 10..13 for steps 2..5
    assert te.action(1)[0] == 1
    assert te.action(2)[0] == pytest.approx((2 + 10) / 2)
    assert te.action(4)[0] == 12
    assert te.action(6) is None
    weighted = TemporalEnsembler(horizon=4, m=1.0)
    weighted.add(np.zeros((4, 1)), 0)
    weighted.add(np.ones((4, 1)), 1)
    assert weighted.action(1)[0] == pytest.approx(np.exp(-1) / (1 + np.exp(-1)))
    with pytest.raises(ValueError):
        te.add(np.full((4, 1), np.inf), 3)
    # s = 1: H + 1 chunks overlap one step; none may be dropped silently.
    dense = TemporalEnsembler(horizon=4)
    for t in range(5):
        dense.add(np.full((4, 1), float(t)), start_step=t - 1)
    assert dense.action(2)[0] == pytest.approx(np.mean([0, 1, 2, 3]))  # 4 chunks cover step 2
    assert dense.action(3)[0] == pytest.approx(np.mean([1, 2, 3, 4]))


def test_executor_modes():
    assert executor_mode("rtc") == "switch" and executor_mode("sync") == "sync"
    assert executor_mode("te_dense") == "ensemble"
    with pytest.raises(ValueError):
        executor_mode("rtc_fast")


def test_bid_prefers_coherent_samples():
    # Velocity field with two modes chosen by the sign of the noise's mean: a1 = sign(x0 mean) * 1.
    def velocity(a, obs, tau):
        target = torch.sign(a.mean(dim=(1, 2), keepdim=True)).expand_as(a)
        return target - a  # straight path to +/-1 from whatever x is (approximately)

    prefix = torch.ones(4, 6, 2)
    w = prefix_weights(6, 2, 1)
    gen = torch.Generator().manual_seed(0)
    out = bid_sample(velocity, torch.zeros(4, 1), prefix, w, n_samples=16, n_steps=5, generator=gen)
    assert (out.mean(dim=(1, 2)) > 0).all()
    out_neg = bid_sample(velocity, torch.zeros(4, 1), -prefix, w, n_samples=16, n_steps=5, generator=gen)
    assert (out_neg.mean(dim=(1, 2)) < 0).all()
    weak = lambda a, obs, tau: -a  # noqa: E731  weak policy: collapses to 0
    out_fc = bid_sample(velocity, torch.zeros(4, 1), prefix, w, 16, 5, weak_velocity=weak, k=3, generator=gen)
    assert (out_fc.mean(dim=(1, 2)) > 0).all()
