"""Chunk latency at batch 1 with 5 denoising steps: plain vs RTC guided vs BID (N = 16) vs
training-time RTC (``rtc_trained``: the prefix given at flow time 1, per-position flow time, no VJP).

Measured in one run on this machine for both model sizes (MLP-Mixer H=8 and bimanual H=50), the way
the robot samples: the observation encoded once per chunk, the velocity (and RTC's exact VJP) per
step. A breakdown gives the encode time, one velocity evaluation (forward) and one forward +
backward (the VJP), and the floor a VJP allows: ``encode + n (forward + backward)``.
Ratios measured in the same run are what to compare; absolute times depend on the machine.
The last printed line is a JSON object. Run: ``python -m rtc_ros.benchmarks.latency``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Callable

import torch

from rtc_ros.core.bid import bid_sample
from rtc_ros.core.masks import prefix_weights
from rtc_ros.core.sampling import sample_guided, sample_plain, sample_prefix_conditioned
from rtc_ros.policies.mixer import MLPMixerPolicy, MixerConfig, bimanual_h50, mixer_h8


def _time(fn: Callable[[], object], repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(1000.0 * (time.perf_counter() - t0))
    return out


def bench_model(name: str, cfg: MixerConfig, repeats: int, bid_n: int, n_steps: int = 5) -> dict[str, float]:
    torch.manual_seed(0)
    model = MLPMixerPolicy(cfg).eval()
    for p in model.parameters():
        p.requires_grad_(False)
        torch.nn.init.normal_(p, std=0.02)
    H, M = cfg.horizon, cfg.action_dim
    obs = torch.randn(1, cfg.obs_dim)
    noise = torch.randn(1, H, M)
    prefix = torch.randn(1, H, M)
    d = max(1, H // 8)
    w = prefix_weights(H, d, max(1, H // 2))
    vel = model.velocity
    tau = torch.full((1,), 0.4)

    def encode() -> object:
        with torch.no_grad():
            return model.encode(obs)

    ctx = encode()

    def forward_backward() -> None:
        x = noise.clone().requires_grad_(True)
        out = x + 0.6 * vel(x, ctx, tau)
        torch.autograd.grad(out, x, grad_outputs=prefix)

    def forward() -> None:
        with torch.no_grad():
            vel(noise, ctx, tau)

    # Interleave so that machine-load drift affects them alike; each chunk encodes its observation once.
    plain, guided, bid, trained, enc, fwd, fwd_bwd = [], [], [], [], [], [], []
    for _ in range(3):
        plain += _time(lambda: sample_plain(vel, encode(), noise, n_steps), repeats)
        trained += _time(lambda: sample_prefix_conditioned(vel, encode(), noise, prefix, d, n_steps), repeats)
        guided += _time(lambda: sample_guided(vel, encode(), noise, prefix, w, 5.0, n_steps), repeats)
        bid += _time(lambda: bid_sample(vel, encode(), prefix, w, bid_n, n_steps), max(1, repeats // 2))
        enc += _time(encode, repeats)
        fwd += _time(forward, repeats)
        fwd_bwd += _time(forward_backward, repeats)
    res = {
        "plain_ms": statistics.median(plain),
        "guided_ms": statistics.median(guided),
        "bid_ms": statistics.median(bid),
        "trained_ms": statistics.median(trained),
        "encode_ms": statistics.median(enc),
        "forward_ms": statistics.median(fwd),
        "forward_backward_ms": statistics.median(fwd_bwd),
    }
    res["vjp_floor_ms"] = res["encode_ms"] + n_steps * res["forward_backward_ms"]
    res["guided_over_plain"] = res["guided_ms"] / res["plain_ms"]
    res["floor_over_plain"] = res["vjp_floor_ms"] / res["plain_ms"]
    res["bid_over_guided"] = res["bid_ms"] / res["guided_ms"]
    res["trained_over_plain"] = res["trained_ms"] / res["plain_ms"]
    params = sum(p.numel() for p in model.parameters())
    print(f"{name:12s} params {params/1e6:5.2f}M  plain {res['plain_ms']:7.2f} ms  guided (RTC) "
          f"{res['guided_ms']:7.2f} ms  BID N={bid_n} {res['bid_ms']:7.2f} ms  "
          f"guided/plain {res['guided_over_plain']:.2f}  bid/guided {res['bid_over_guided']:.2f}")
    print(f"{'':12s} encode {res['encode_ms']:6.2f} ms, per step: forward {res['forward_ms']:6.2f} ms, forward + "
          f"backward {res['forward_backward_ms']:6.2f} ms; VJP floor {res['vjp_floor_ms']:7.2f} ms "
          f"({res['floor_over_plain']:.2f} x plain)")
    print(f"{'':12s} training-time RTC (d = {d}) {res['trained_ms']:7.2f} ms ({res['trained_over_plain']:.2f} x plain)")
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--bid-samples", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (batch-1 CPU inference is fastest with 1; 0 = torch default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"batch 1, 5 denoising steps, torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    h8 = bench_model("mixer_h8", mixer_h8(action_dim=6, obs_dim=32), args.repeats, args.bid_samples)
    h50 = bench_model("bimanual_h50", bimanual_h50(obs_dim=14 + 3 * 24 * 32), args.repeats, args.bid_samples)
    out = {
        "guided_over_plain_mixer_h8": round(h8["guided_over_plain"], 3),
        "guided_over_plain_h50": round(h50["guided_over_plain"], 3),
        "floor_over_plain_mixer_h8": round(h8["floor_over_plain"], 3),
        "floor_over_plain_h50": round(h50["floor_over_plain"], 3),
        "bid_over_guided_h50": round(h50["bid_over_guided"], 3),
        "trained_over_plain_mixer_h8": round(h8["trained_over_plain"], 3),
        "trained_over_plain_h50": round(h50["trained_over_plain"], 3),
        "mixer_h8_ms": {k: round(v, 3) for k, v in h8.items() if k.endswith("_ms")},
        "h50_ms": {k: round(v, 3) for k, v in h50.items() if k.endswith("_ms")},
        "target_guided_over_plain_le_2": h8["guided_over_plain"] <= 2.0 and h50["guided_over_plain"] <= 2.0,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
