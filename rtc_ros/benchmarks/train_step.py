"""Cost of a training-time RTC training step next to a plain flow-matching step.

The model of a policy file (its architecture and weights, so the numbers are for that network), one
fixed batch of random normalised observations and action chunks, AdamW: plain flow matching
(``prefix_conditioning = 0``) and prefix-conditioned flow matching (``d ~ U{0..D}`` per sample,
per-position flow time, :func:`rtc_ros.policies.train.flow_matching_loss`) alternate step by step, so
a change of machine load hits both alike. Prints the median step times and their ratio; the last
line is a JSON object. The ratio decides how many steps a time-capped recipe gets
(``train_sim_policy --max-minutes``).

    python -m rtc_ros.benchmarks.train_step policies/bimanual_cnn_h50_trained.yaml --prefix-conditioning 12
"""

from __future__ import annotations

import argparse
import json

import torch

from rtc_ros.benchmarks.latency import interleaved_medians
from rtc_ros.policies.spec import PolicySpecError, load_policy
from rtc_ros.policies.train import check_prefix_conditioning, flow_matching_loss


def bench_train_step(spec: str, prefix_conditioning: int, batch: int = 64, repeats: int = 12,
                     warmup: int = 2, seed: int = 0) -> dict[str, float]:
    """Median ms of a plain and of a prefix-conditioned training step (forward, backward, AdamW) of the
    policy file's model on one fixed random batch; ValueError names ``prefix_conditioning`` when the model
    cannot take it (:func:`rtc_ros.policies.train.check_prefix_conditioning`)."""
    model = load_policy(spec).model
    check_prefix_conditioning(model, prefix_conditioning)
    if prefix_conditioning == 0:
        raise ValueError("prefix_conditioning must be >= 1 (0 is the plain step it is compared with)")
    model.train()
    for p in model.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(batch, model.obs_dim, generator=g)
    actions = torch.randn(batch, model.horizon, model.action_dim, generator=g)

    def step(d_max: int) -> None:
        loss = flow_matching_loss(model, obs, actions, g, d_max)
        opt.zero_grad()
        loss.backward()
        opt.step()

    medians = interleaved_medians({"plain": lambda: step(0), "prefix": lambda: step(prefix_conditioning)},
                                  repeats, warmup)
    plain, prefixed = medians["plain"], medians["prefix"]
    return {"plain_step_ms": plain, "prefix_step_ms": prefixed, "prefix_over_plain": prefixed / plain}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", help="policy spec YAML (its model and weights are timed)")
    ap.add_argument("--prefix-conditioning", type=int, default=12, help="largest prefix length D (default 12)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the recipes train with 1)")
    args = ap.parse_args(argv)
    if args.batch_size < 1 or args.repeats < 1:
        ap.error("--batch-size and --repeats must be >= 1")
    torch.set_num_threads(args.threads)
    try:
        out = bench_train_step(args.spec, args.prefix_conditioning, args.batch_size, args.repeats)
    except (OSError, PolicySpecError, ValueError) as e:
        ap.error(str(e))
    print(f"{args.spec}: batch {args.batch_size}, {torch.get_num_threads()} thread(s): plain step "
          f"{out['plain_step_ms']:.1f} ms, prefix-conditioned (D = {args.prefix_conditioning}) "
          f"{out['prefix_step_ms']:.1f} ms, ratio {out['prefix_over_plain']:.2f}")
    print(json.dumps({"spec": args.spec, "prefix_conditioning": args.prefix_conditioning, "batch": args.batch_size,
                      **{k: round(v, 3) for k, v in out.items()}}))


if __name__ == "__main__":
    main()
