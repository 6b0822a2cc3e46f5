"""Chunk latency at batch 1 with 5 denoising steps: plain vs RTC guided vs BID (N = 16) vs
training-time RTC (``rtc_trained``: the prefix given at flow time 1, per-position flow time, no VJP).

Measured in one run on this machine for both model sizes (MLP-Mixer H=8 and bimanual H=50), the way
the robot samples: the observation encoded once per chunk, the velocity (and RTC's exact VJP) per
step. A breakdown gives the encode time, one velocity evaluation (forward) and one forward +
backward (the VJP), and the floor a VJP allows: ``encode + n (forward + backward)``.
Ratios measured in the same run are what to compare; absolute times depend on the machine.
The last printed line is a JSON object. Run: ``python -m rtc_ros.benchmarks.latency``.

``--device cuda`` (or ``cuda:N``) runs the same on a GPU, each timed call between two
``torch.cuda.synchronize(device)``; plain, guided and training-time RTC then replay CUDA graphs
(:mod:`rtc_ros.runtime.cuda_graphs`, as ``ChunkGenerator`` does on CUDA; ``--no-cuda-graphs``: eager).
The JSON has the same keys plus ``device`` and ``cuda_graphs`` (whether graphs were replayed). Without
CUDA, ``--device cuda`` exits with an error naming ``--device``.

``--spec POLICY.yaml`` also times a policy file the way the nodes sample it (:func:`bench_spec`:
``ChunkGenerator.generate`` from the policy's typical observation, kinds interleaved, on ``--device``, with the
same breakdown); the JSON then adds ``spec`` (its medians, breakdown, H, d, s) and ``guided_over_plain_spec`` /
``trained_over_plain_spec``. ``--spec-only`` skips the two built-in models (your own model's figures alone).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

from rtc_ros.core.bid import bid_sample
from rtc_ros.core.masks import prefix_weights
from rtc_ros.core.sampling import sample_guided, sample_plain, sample_prefix_conditioned
from rtc_ros.policies.mixer import MLPMixerPolicy, MixerConfig, bimanual_h50, mixer_h8
from rtc_ros.runtime.cuda_graphs import GraphedSampler

if TYPE_CHECKING:
    from rtc_ros.policies.loaded import LoadedPolicy

#: BID's K (positive / negative set size) of the paper; smaller when N is (K <= N)
BID_K = 3


def bid_k(n_samples: int) -> int:
    """BID's K for ``n_samples`` candidates: the paper's 3, or N when N < 3 (``bid_sample`` needs K <= N)."""
    return min(BID_K, n_samples)


def _time(fn: Callable[[], object], repeats: int, warmup: int = 3, cuda: torch.device | None = None) -> list[float]:
    """Wall times (ms) of ``repeats`` calls after ``warmup``; ``cuda`` (a CUDA device): that device is
    synchronised before and after each call (not the current device: ``cuda:1`` would go unsynchronised)."""
    sync = (lambda: torch.cuda.synchronize(cuda)) if cuda is not None else (lambda: None)
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        out.append(1000.0 * (time.perf_counter() - t0))
    return out


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 3) -> dict[str, float]:
    """Median wall time (ms) of each function over ``repeats`` rounds after ``warmup``; in each round every
    function runs once, in turn, so a change of machine load hits each alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(warmup + repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_model(name: str, cfg: MixerConfig, repeats: int, bid_n: int, n_steps: int = 5,
                device: str = "cpu", cuda_graphs: bool = True) -> dict[str, float]:
    """Medians (ms) and ratios for one model size on ``device`` (CUDA: graphs unless ``cuda_graphs`` is False;
    the result's ``cuda_graphs`` says whether they were replayed)."""
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    sync_dev = dev if cuda else None
    torch.manual_seed(0)
    model = MLPMixerPolicy(cfg).eval()
    for p in model.parameters():
        p.requires_grad_(False)
        torch.nn.init.normal_(p, std=0.02)
    model.to(dev)
    H, M = cfg.horizon, cfg.action_dim
    obs = torch.randn(1, cfg.obs_dim).to(dev)
    noise = torch.randn(1, H, M).to(dev)
    prefix = torch.randn(1, H, M).to(dev)
    d = max(1, H // 8)
    w = prefix_weights(H, d, max(1, H // 2)).to(dev)
    vel = model.velocity
    tau = torch.full((1,), 0.4, device=dev)
    graphs = GraphedSampler(vel, n_steps) if cuda and cuda_graphs else None

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

    def run_plain() -> object:
        ctx = encode()
        out = graphs.plain(ctx, noise) if graphs is not None else None
        return out if out is not None else sample_plain(vel, ctx, noise, n_steps)

    def run_trained() -> object:
        ctx = encode()
        out = graphs.trained(ctx, noise, prefix, d) if graphs is not None else None
        return out if out is not None else sample_prefix_conditioned(vel, ctx, noise, prefix, d, n_steps)

    def run_guided() -> object:
        ctx = encode()
        with torch.no_grad():
            out = graphs.guided(ctx, noise, prefix, w) if graphs is not None else None
            return out if out is not None else sample_guided(vel, ctx, noise, prefix, w, 5.0, n_steps)

    # Interleave so that machine-load drift affects them alike; each chunk encodes its observation once.
    plain, guided, bid, trained, enc, fwd, fwd_bwd = [], [], [], [], [], [], []
    for _ in range(3):
        plain += _time(run_plain, repeats, cuda=sync_dev)
        trained += _time(run_trained, repeats, cuda=sync_dev)
        guided += _time(run_guided, repeats, cuda=sync_dev)
        bid += _time(lambda: bid_sample(vel, encode(), prefix, w, bid_n, n_steps, k=bid_k(bid_n)),
                     max(1, repeats // 2), cuda=sync_dev)
        enc += _time(encode, repeats, cuda=sync_dev)
        fwd += _time(forward, repeats, cuda=sync_dev)
        fwd_bwd += _time(forward_backward, repeats, cuda=sync_dev)
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
    res["cuda_graphs"] = graphs is not None and graphs.disabled_reason is None
    params = sum(p.numel() for p in model.parameters())
    print(f"{name:12s} params {params/1e6:5.2f}M  plain {res['plain_ms']:7.2f} ms  guided (RTC) "
          f"{res['guided_ms']:7.2f} ms  BID N={bid_n} {res['bid_ms']:7.2f} ms  "
          f"guided/plain {res['guided_over_plain']:.2f}  bid/guided {res['bid_over_guided']:.2f}")
    print(breakdown_line(res))
    print(f"{'':12s} training-time RTC (d = {d}) {res['trained_ms']:7.2f} ms ({res['trained_over_plain']:.2f} x plain)")
    return res


def check_device(ap: argparse.ArgumentParser, device: str) -> str:
    """``--device`` checked: ``cpu``, or ``cuda``/``cuda:N`` with CUDA present (else ``ap.error``: exit 2, no traceback)."""
    if device == "cpu":
        return device
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            ap.error(f"--device {device}: CUDA is not available on this machine (torch {torch.__version__}, "
                     f"torch.cuda.is_available() is False); use --device cpu")
        index = torch.device(device).index or 0
        if index >= torch.cuda.device_count():
            ap.error(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
        return device
    ap.error(f"--device must be cpu, cuda or cuda:N, got {device!r}")
    raise AssertionError  # ap.error exits


def bench_spec(path: str | LoadedPolicy, repeats: int, d: int = 6, s: int = 25, warmup: int = 3,
               name: str = "spec") -> dict[str, float]:
    """Median ms per chunk of a policy file through the robot's :class:`~rtc_ros.runtime.generator.ChunkGenerator`
    (5 steps, on the policy's device, from :meth:`~rtc_ros.policies.loaded.LoadedPolicy.typical_observation`):
    ``plain`` (``naive``), ``guided`` (``rtc``, exact VJP) and, for a prefix-trained policy, ``trained``
    (``rtc_trained``), all with the previous chunk's remaining actions, delay ``d`` and horizon ``s`` (``s`` at most
    ``H // 2`` and ``d`` at most ``H - s``, so a short chunk keeps an overlap; both in the result), and the breakdown
    of :func:`bench_model` (``encode_ms``, ``forward_ms``, ``forward_backward_ms``, ``vjp_floor_ms``).
    The kinds alternate call by call, so a change of machine load hits each alike. ``path``: a spec file,
    or the policy already loaded from one. Prints two lines headed ``name``."""
    from rtc_ros.policies.spec import load_policy
    from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig

    pol = load_policy(path) if isinstance(path, (str, Path)) else path
    kinds = {"plain": "naive", "guided": "rtc", **({"trained": "rtc_trained"} if pol.prefix_conditioning else {})}
    gens = {k: ChunkGenerator(pol, GeneratorConfig(method=m, n_steps=5)) for k, m in kinds.items()}
    obs = pol.typical_observation()
    H = pol.horizon
    s = max(0, min(s, H // 2))  # (H = 1: s = 0, the whole previous chunk)
    d = max(0, min(d, H - s, pol.prefix_conditioning or d))
    prev = gens["plain"].generate(obs)[s:]
    gen = gens["guided"]
    x = torch.randn(1, gen.sample_horizon, gen.sample_dim, device=pol.device)
    tau = torch.full((1,), 0.4, device=pol.device)
    cuda = pol.device if pol.device.type == "cuda" else None
    sync = (lambda: torch.cuda.synchronize(cuda)) if cuda is not None else (lambda: None)

    def encode() -> object:
        with torch.no_grad():
            out = gen.encode(torch.as_tensor(obs)[None])
        sync()
        return out

    ctx = encode()

    def forward() -> None:
        with torch.no_grad():
            gen.velocity(x, ctx, tau)
        sync()

    def forward_backward() -> None:
        xg = x.clone().requires_grad_(True)
        with torch.enable_grad():
            torch.autograd.grad(xg + 0.6 * gen.velocity(xg, ctx, tau), xg, grad_outputs=x)
        sync()

    def chunk(g: ChunkGenerator) -> None:
        g.generate(obs, prev, d, s)
        sync()

    fns = {k: (lambda g=g: chunk(g)) for k, g in gens.items()}
    medians = interleaved_medians({**fns, "encode": encode, "forward": forward,
                                   "forward_backward": forward_backward}, repeats, warmup)
    out: dict[str, float] = {f"{k}_ms": v for k, v in medians.items()}
    out["vjp_floor_ms"] = out["encode_ms"] + 5 * out["forward_backward_ms"]
    out["guided_over_plain"] = out["guided_ms"] / out["plain_ms"]
    out["floor_over_plain"] = out["vjp_floor_ms"] / out["plain_ms"]
    if "trained_ms" in out:
        out["trained_over_plain"] = out["trained_ms"] / out["plain_ms"]
    out.update(H=H, d=d, s=s)
    trained = f"  trained {out['trained_ms']:7.2f} ms" if "trained_ms" in out else ""
    print(f"{name:12s} H={H} d={d} s={s} on {pol.device}: plain {out['plain_ms']:7.2f} ms  guided (RTC) "
          f"{out['guided_ms']:7.2f} ms{trained}  guided/plain {out['guided_over_plain']:.2f}")
    print(breakdown_line(out))
    return out


def breakdown_line(res: dict[str, float]) -> str:
    """The breakdown's printed line: encode, one forward, one forward + backward, the VJP floor."""
    return (f"{'':12s} encode {res['encode_ms']:6.2f} ms, per step: forward {res['forward_ms']:6.2f} ms, forward + "
            f"backward {res['forward_backward_ms']:6.2f} ms; VJP floor {res['vjp_floor_ms']:7.2f} ms "
            f"({res['floor_over_plain']:.2f} x plain)")


def check_counts(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--repeats``, ``--bid-samples`` (>= 1) and ``--threads`` (>= 0) checked (else ``ap.error``: exit 2)."""
    for option, value, low in (("--repeats", args.repeats, 1), ("--bid-samples", args.bid_samples, 1),
                               ("--threads", args.threads, 0)):
        if value < low:
            ap.error(f"{option} must be >= {low}, got {value}")


def load_spec(ap: argparse.ArgumentParser, path: str | None, device: str = "cpu") -> LoadedPolicy | None:
    """The ``--spec`` policy loaded up front (on ``device``), so a bad file is refused before any timing
    (``ap.error``)."""
    if path is None:
        return None
    from rtc_ros.policies.spec import load_policy

    try:
        return load_policy(path, device=device)
    except (OSError, ValueError) as exc:
        ap.error(f"--spec {path}: {exc}")
        raise AssertionError from exc  # ap.error exits


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("--repeats", type=int, default=20, help="timed calls per round (>= 1)")
    ap.add_argument("--bid-samples", type=int, default=16,
                    help=f"BID's N (>= 1; K = min({BID_K}, N))")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (batch-1 CPU inference is fastest with 1; 0 = torch default)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    ap.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=True,
                    help="on CUDA, replay plain/guided/trained sampling as CUDA graphs (default on)")
    ap.add_argument("--spec", default=None, metavar="POLICY.yaml",
                    help="also time this policy file through the nodes' chunk generator (on --device), with the "
                         "same breakdown")
    ap.add_argument("--spec-only", action="store_true",
                    help="time only the --spec policy (the JSON then has device and the spec keys only)")
    args = ap.parse_args(argv)
    check_counts(ap, args)
    if args.spec_only and args.spec is None:
        ap.error("--spec-only needs --spec POLICY.yaml")
    device = check_device(ap, args.device)
    policy = load_spec(ap, args.spec, device)
    if args.threads:
        torch.set_num_threads(args.threads)
    where = "CPU" if device == "cpu" else f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    print(f"batch 1, 5 denoising steps, torch {torch.__version__}, {torch.get_num_threads()} threads, {where}")
    if args.spec_only:
        print(json.dumps({"device": device, **spec_keys(args.spec, bench_spec(policy, args.repeats))}))
        return
    h8 = bench_model("mixer_h8", mixer_h8(action_dim=6, obs_dim=32), args.repeats, args.bid_samples,
                     device=device, cuda_graphs=args.cuda_graphs)
    h50 = bench_model("bimanual_h50", bimanual_h50(obs_dim=14 + 3 * 24 * 32), args.repeats, args.bid_samples,
                      device=device, cuda_graphs=args.cuda_graphs)
    out = {
        "device": device,
        "cuda_graphs": bool(h8["cuda_graphs"] and h50["cuda_graphs"]),
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
    if policy is not None:
        out.update(spec_keys(args.spec, bench_spec(policy, args.repeats)))
    print(json.dumps(out))


def spec_keys(path: str, spec: dict[str, float]) -> dict[str, object]:
    """The JSON's keys for a ``--spec`` policy: ``spec`` (its medians, breakdown, H, d, s) and the ratios."""
    out: dict[str, object] = {"spec": {"path": path, **{k: round(v, 3) for k, v in spec.items()}},
                              "guided_over_plain_spec": round(spec["guided_over_plain"], 3)}
    if "trained_over_plain" in spec:
        out["trained_over_plain_spec"] = round(spec["trained_over_plain"], 3)
    return out


if __name__ == "__main__":
    main()
