"""Prefix re-indexing, the switch store, Algorithm 1's delay queue, TE, the method table and BID."""

import numpy as np
import pytest
import torch

from rtc_ros.core.bid import backward_loss, bid_sample, forward_loss
from rtc_ros.core.delay import DelayForecaster, latency_to_steps
from rtc_ros.core.ensemble import TemporalEnsembler
from rtc_ros.core.masks import prefix_weights
from rtc_ros.core.prefix import build_prefix
from rtc_ros.runtime.chunk_store import SwitchStore
from rtc_ros.runtime.methods import METHOD_TABLE, executor_mode


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


def test_build_prefix_from_remaining_actions_of_any_length():
    rem = _chunk(3.0, H=3)  # 3 remaining actions, index 0 = the observation's step
    y = build_prefix(rem, 0, horizon=8)
    assert y.shape == (8, 2) and y[:, 0].tolist() == [3, 4, 5, 5, 5, 5, 5, 5]
    assert build_prefix(_chunk(0.0, H=10), 0, horizon=8)[:, 0].tolist() == list(range(8))
    with pytest.raises(ValueError):
        build_prefix(rem[:0], 0, horizon=8)


def test_switch_store_indexes_by_step():
    store = SwitchStore(8)
    assert store.action(0) is None
    store.insert(_chunk(100.0), t_obs=3)
    assert store.action(3)[0] == 100 and store.action(5)[0] == 102 and store.action(10)[0] == 107
    assert store.action(11) is None and store.action(2) is None  # run out / before the chunk
    a = store.action(4)
    a[:] = -1
    assert store.action(4)[0] == 101  # copies out


def test_delay_queue_is_algorithm_1():
    """Q = Queue([d_init], maxlen=b); d = max(Q): d_init counts until b delays pushed it out."""
    f = DelayForecaster(buffer_size=3, initial_delay=7)
    assert f.forecast() == 7 and f.queue() == [7]
    f.record(3)
    assert f.queue() == [7, 3] and f.forecast() == 7  # d_init is still in Q
    f.record(5)
    assert f.forecast() == 7
    f.record(4)
    assert f.queue() == [3, 5, 4] and f.forecast() == 5  # b = 3 delays: d_init left
    f.record(3)
    f.record(3)
    assert f.forecast() == 4
    f.record(3)
    assert f.forecast() == 3  # forgets: not a running max
    g = DelayForecaster(buffer_size=3, initial_delay=0)
    assert g.set_initial_delay(6) and g.queue() == [6]  # warm-up latency replaces d_init ...
    g.record(2)
    assert not g.set_initial_delay(9) and g.queue() == [6, 2]  # ... only before any observed delay
    with pytest.raises(ValueError):
        DelayForecaster(buffer_size=0)
    with pytest.raises(ValueError):
        g.record(-1)
    # a partly elapsed step still runs from the old chunk: round up
    assert latency_to_steps(0.099, 0.02) == 5 and latency_to_steps(0.1, 0.02) == 5
    assert latency_to_steps(0.101, 0.02) == 6 and latency_to_steps(0.0, 0.02) == 0


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


def test_method_table():
    assert executor_mode("rtc") == "switch" and executor_mode("sync") == "sync"
    assert executor_mode("te_dense") == "ensemble" and METHOD_TABLE["te_dense"].dense
    assert [m for m, i in METHOD_TABLE.items() if i.uses_prefix] == ["rtc", "rtc_linear", "rtc_hard", "rtc_trained", "bid"]
    assert METHOD_TABLE["rtc_linear"].schedule == "linear" and METHOD_TABLE["bid"].schedule == "exp"
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


def test_bid_losses_match_hand_computed_values():
    """The authors' bid_action: backward = sum_h W_h ||a_h - y_h||; forward = (sum_{k,h} ||a_h - a+_{k,h}||
    - sum_{k,h} ||a_h - a-_{k,h}||) / N."""
    # B = 1, N = 2, H = 2, M = 2
    strong = torch.tensor([[[[3.0, 4.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 0.0]]]])
    prefix = torch.zeros(1, 2, 2)
    w = torch.tensor([1.0, 0.5])
    # sample 0: 1 * ||(3,4)|| + 0.5 * 0 = 5; sample 1: 1 * 0 + 0.5 * ||(1,0)|| = 0.5
    assert backward_loss(strong, prefix, w).tolist() == [[5.0, 0.5]]
    pos = strong[:, 1:2]  # K = 1: the better strong sample
    neg = torch.tensor([[[[0.0, 0.0], [0.0, 2.0]]]])
    # sample 0: to pos ||(3,4)|| + ||(-1,0)|| = 6, to neg 5 + ||(0,-2)|| = 7 -> (6 - 7) / 2 = -0.5
    # sample 1: to pos 0 + 0 = 0, to neg 0 + ||(1,-2)|| = sqrt(5) -> -sqrt(5) / 2
    fl = forward_loss(strong, pos, neg)
    assert fl[0, 0].item() == pytest.approx(-0.5) and fl[0, 1].item() == pytest.approx(-5 ** 0.5 / 2)
