"""Offline quality of a bimanual policy at recorded demo observations (no closed loop).

At ``n`` observations drawn (seeded) from successful demonstration bags this samples chunks with the
spec's denoising steps through :class:`rtc_ros.runtime.generator.ChunkGenerator` and reports:

* **smoothness**: the RMS of the chunks' own acceleration (second difference / dt^2) over the arm
  joints (grippers excluded), next to the same statistic of the expert's label chunks at the same
  observations, and their ratio (issue #13 target: <= 2);
* **gripper range**: min / max of the gripper commands and the fraction outside the limits
  ``[lower, upper]`` (and by more than 0.05; the expert's labels are inside; nothing is clipped here);
* **splices**: for each observation k with a later one k + s in the same episode, the previous chunk
  A (plain, at k) and the next chunk B (at k + s, RTC-guided toward ``A[s:]`` with ``d`` frozen
  steps, and plain for comparison); the executor switches at step k + s + d, so the jump is
  ``|B[d] - A[s + d - 1]|``. Reported: the fraction of switches where any joint's jump exceeds the
  executor's per-tick ``max_step`` (:func:`rtc_ros.runtime.executor_types.clamp_command`; read from
  the params file), and the largest jump; for a prefix-trained policy (spec
  ``training.prefix_conditioning >= d``) the same for B sampled with training-time RTC
  (``splice_rtc_trained``: ``A[s:s + d]`` given as the prefix, same noise);
* within-chunk steps: the fraction of chunks with a tick-to-tick change beyond ``max_step``, and per
  joint the largest step over ``max_step`` of the policy's chunks and of the expert's labels (a
  joint the expert itself moves at ~``max_step`` per tick leaves a switch no room for a mismatch).

    python -m rtc_ros.experiments.policy_quality policies/bimanual_cnn_h50.yaml --bags /tmp/rtc_sim_demos
    python -m rtc_ros.experiments.policy_quality policies/bimanual_cnn_h50.yaml --eval-set /tmp/rtc_eval_transfer_margin --n 1000
    python -m rtc_ros.experiments.policy_quality --spline 12 16 20 25   # spline basis vs the expert's labels

**The evaluation set** (``--eval-set DIR``): held-out expert episodes, the same for every policy and
every run -- seeds ``EVAL_DEMO_SEED0 ..`` (disjoint from the training demos, seeds from 0, and from the
closed-loop evaluation, seeds from 10000), no noise on the executed targets, written into ``DIR`` by
:func:`rtc_ros.experiments.sim_demos.generate_demos` when it holds no bags; the expert's timing
(``--expert-schedule``, :mod:`rtc_ros.sim.expert_schedule`) is part of the set's identity (a set
written before 2026-12-05, whose marker does not name it, is the ``original`` one). The switch fraction
depends on the observations drawn (3.5 % vs 1.0 % for one policy on two bag sets of training demos), so
a statistic meant to be compared against a target is measured there, with its Wilson 95 % interval
(the rows come from 40 episodes and are not independent: the interval is a lower bound on the
uncertainty).

The last line printed is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from rtc_ros.experiments.runner import DEFAULT_CONFIG, arm_limits  # noqa: F401 (arm_limits re-exported)
from rtc_ros.sim.expert_schedule import SCHEDULES, schedule_name

DEFAULT_PARAMS = DEFAULT_CONFIG  # the sim params file, from the source tree or the installed share
#: first seed of the held-out evaluation episodes (training demos: seeds from 0; closed loop: from 10000)
EVAL_DEMO_SEED0 = 20_000
EVAL_DEMO_EPISODES = 40


def eval_set(directory: str | Path, task: str = "transfer_cube", episodes: int = EVAL_DEMO_EPISODES,
             expert_schedule: str = "") -> list[Path]:
    """The successful bags of the fixed evaluation set in ``directory`` (module docstring), generated
    there first if it holds no demo bags; ``expert_schedule``: the transfer expert's timing (``""``: the
    task expert's default, :mod:`rtc_ros.sim.expert_schedule`), part of the set's identity."""
    from rtc_ros.experiments.sim_demos import DemoConfig, generate_demos
    from rtc_ros.recording.bag import read_sidecar

    directory = Path(directory)
    marker = directory / "EVAL_SET.json"  # written last: a set cut short is not taken for a complete one
    schedule = schedule_name(task, expert_schedule)
    want = {"task": task, "seed0": EVAL_DEMO_SEED0, "episodes": episodes, "noise_fraction": 0.0,
            "expert_schedule": schedule}
    if not any(directory.glob("demo_*")):
        generate_demos(directory, DemoConfig(episodes=episodes, seed0=EVAL_DEMO_SEED0, noise_fraction=0.0, task=task,
                                             expert_schedule=schedule))
        marker.write_text(json.dumps(want))
    have = json.loads(marker.read_text()) if marker.is_file() else None
    if isinstance(have, dict) and "expert_schedule" not in have:  # a set made before 2026-12-05: original timing
        have["expert_schedule"] = "original"
    if have != want:
        raise ValueError(f"--eval-set {directory} is not the complete evaluation set {want} (its {marker.name}: "
                         f"{have}); use an empty directory")
    return sorted(p for p in directory.glob("demo_*") if (read_sidecar(p) or {}).get("success"))


def accel_rms(chunks: np.ndarray, dt: float, dims: np.ndarray) -> float:
    """RMS of ``(a[i+1] - 2 a[i] + a[i-1]) / dt^2`` over chunks ``(B, H, M)``, steps and ``dims``."""
    acc = np.diff(chunks[:, :, dims], n=2, axis=1) / dt ** 2
    return float(np.sqrt(np.mean(acc ** 2)))


def spline_fidelity(bags: list[str | Path], n_basis: int, horizon: int = 50, dt: float = 0.02,
                    every: int = 7) -> dict[str, float]:
    """How well ``n_basis`` cubic B-splines (:func:`rtc_ros.policies.cnn_mixer.spline_projection`)
    represent the expert's label chunks (every ``every``-th sample of ``bags``): residual RMS / max on
    the arm joints and grippers, and the acceleration RMS of the arm joints before and after."""
    from rtc_ros.experiments.sim_demos import load_demo_dataset
    from rtc_ros.policies.cnn_mixer import spline_projection

    ds = load_demo_dataset(bags, horizon=horizon)
    a = ds.actions[::every].astype(np.float64)
    grip = np.array(["gripper" in n for n in ds.joint_names])
    arm = np.flatnonzero(~grip)
    p = np.einsum("ij,bjm->bim", spline_projection(horizon, n_basis), a)
    r = p - a
    return {"n_basis": n_basis, "chunks": int(a.shape[0]), "residual_rms_arm": float(np.sqrt(np.mean(r[:, :, arm] ** 2))),
            "residual_max_arm": float(np.abs(r[:, :, arm]).max()), "residual_max_gripper": float(np.abs(r[:, :, grip]).max()),
            "accel_rms_labels": accel_rms(a, dt, arm), "accel_rms_projected": accel_rms(p, dt, arm)}


def pick_rows(episode: np.ndarray, step: np.ndarray, n: int, s: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows (seeded, without replacement) that have a row ``s`` steps later in the same episode,
    and those later rows."""
    key = {(int(e), int(k)): i for i, (e, k) in enumerate(zip(episode, step))}
    later = np.array([key.get((int(e), int(k) + s), -1) for e, k in zip(episode, step)])
    ok = np.flatnonzero(later >= 0)
    if ok.size == 0:
        raise ValueError(f"no observation has one s={s} steps later in the same episode")
    rows = np.sort(np.random.default_rng(seed).choice(ok, size=min(n, ok.size), replace=False))
    return rows, later[rows]


def _sample(gen: Any, obs: np.ndarray, prefix: np.ndarray | None, d: int, s: int, seed: int,
            batch: int) -> np.ndarray:
    out = []
    g = torch.Generator().manual_seed(seed)
    for i in range(0, obs.shape[0], batch):
        o = torch.from_numpy(obs[i:i + batch])
        p = torch.from_numpy(prefix[i:i + batch]).float() if prefix is not None else None
        noise = torch.randn((o.shape[0], gen.sample_horizon, gen.sample_dim), generator=g)
        out.append(gen.sample(o, p, d, s, noise).cpu().numpy().astype(np.float64))
    return np.concatenate(out)


def evaluate(spec: str | Path, bags: list[str | Path], n: int = 200, d: int = 2, s: int = 25, seed: int = 0,
             params_file: str | Path = DEFAULT_PARAMS, batch: int = 50) -> dict[str, Any]:
    """The measures of the module docstring for the policy ``spec`` at demo observations from ``bags``."""
    from rtc_ros.experiments.sim_demos import load_demo_dataset
    from rtc_ros.policies.spec import load_policy
    from rtc_ros.runtime.generator import ChunkGenerator, GeneratorConfig

    policy = load_policy(spec)
    H, dt = policy.horizon, float(policy.spec.get("dt", 0.02))
    if not 0 <= d < s <= H - d:
        raise ValueError(f"need 0 <= d < s <= H - d (H={H}), got d={d}, s={s}")
    names = list(policy.joint_names or [])
    lower, upper, max_step = arm_limits(params_file, names)
    grip = np.array(["gripper" in nm for nm in names])
    arm = np.flatnonzero(~grip)
    frames = max(policy.observation_builder.camera_frames.values(), default=1)
    ds = load_demo_dataset(bags, horizon=H, frames=frames)
    rows, nxt = pick_rows(ds.episode, ds.step, n, s, seed)
    obs_a, obs_b = ds.observations(rows), ds.observations(nxt)
    gen = ChunkGenerator(policy, GeneratorConfig(method="rtc", n_steps=policy.n_steps, seed=seed))
    a = _sample(gen, obs_a, None, d, s, seed, batch)
    prev = np.concatenate([a[:, s:], np.repeat(a[:, -1:], s, axis=1)], axis=1)  # build_prefix(A, s, H)
    b_rtc = _sample(gen, obs_b, prev, d, s, seed + 1, batch)
    b_plain = _sample(gen, obs_b, None, d, s, seed + 1, batch)
    b_trained = None  # a prefix-trained policy: the same switch with training-time RTC (same noise)
    if 0 < policy.prefix_conditioning and d <= policy.prefix_conditioning:
        trained = ChunkGenerator(policy, GeneratorConfig(method="rtc_trained", n_steps=policy.n_steps, seed=seed))
        b_trained = _sample(trained, obs_b, prev, d, s, seed + 1, batch)
    expert = ds.actions[rows].astype(np.float64)

    def splices(b: np.ndarray) -> dict[str, Any]:
        from rtc_ros.core.stats import wilson_interval

        jump = np.abs(b[:, d] - a[:, s + d - 1])
        hit = (jump > max_step).any(axis=1)
        return {"hit_fraction": float(hit.mean()), "hit_ci95": list(wilson_interval(int(hit.sum()), int(hit.size))),
                "max_jump": float(jump.max()), "max_jump_over_limit": float((jump / max_step).max())}

    def gripper(c: np.ndarray) -> dict[str, float]:
        g = c[:, :, grip]
        out = (g < lower[grip] - 1e-6) | (g > upper[grip] + 1e-6)
        far = (g < lower[grip] - 0.05) | (g > upper[grip] + 0.05)
        return {"min": float(g.min()), "max": float(g.max()), "outside_fraction": float(out.mean()),
                "outside_by_0.05_fraction": float(far.mean())}

    exp_rms, pol_rms = accel_rms(expert, dt, arm), accel_rms(a, dt, arm)
    within = (np.abs(np.diff(a, axis=1)) > max_step).any(axis=(1, 2))
    return {
        "spec": str(spec), "n": int(rows.size), "n_steps": policy.n_steps, "d": d, "s": s,
        "accel_rms_policy": pol_rms, "accel_rms_expert": exp_rms, "accel_ratio": pol_rms / exp_rms,
        "accel_rms_policy_rtc": accel_rms(b_rtc, dt, arm),
        "gripper_policy": gripper(a), "gripper_expert": gripper(expert),
        "splice_rtc": splices(b_rtc), "splice_plain": splices(b_plain),
        "splice_rtc_trained": None if b_trained is None else splices(b_trained),
        "within_chunk_step_hit_fraction": float(within.mean()),
        "label_error_rms": float(np.sqrt(np.mean((a - expert) ** 2))),
        "max_step": max_step.tolist(),
        # how close the expert itself comes to the step limit: a joint the labels move at ~max_step per
        # tick leaves a switch almost no room for a mismatch there
        "expert_step_over_limit": {nm: float(r) for nm, r in zip(names, _max_step_ratio(expert, max_step))},
        "policy_step_over_limit": {nm: float(r) for nm, r in zip(names, _max_step_ratio(a, max_step))},
    }


def _max_step_ratio(chunks: np.ndarray, max_step: np.ndarray) -> np.ndarray:
    """``(M,)``: the largest tick-to-tick step inside ``chunks`` ``(n, H, M)`` per joint, over ``max_step``."""
    return np.abs(np.diff(chunks, axis=1)).max(axis=(0, 1)) / max_step


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spec", nargs="*", help="policy spec YAML(s)")
    ap.add_argument("--bags", default="/tmp/rtc_sim_demos", help="directory of demo bags (demo_*)")
    ap.add_argument("--max-bags", type=int, default=40, help="use the first this many successful bags")
    ap.add_argument("--eval-set", default="", help="directory of the fixed held-out evaluation episodes (generated "
                    "there if empty; module docstring); instead of --bags")
    ap.add_argument("--task", default="transfer_cube", choices=("transfer_cube", "conveyor_cube"),
                    help="--eval-set: the task of its episodes")
    ap.add_argument("--expert-schedule", choices=sorted(SCHEDULES), default="",
                    help="--eval-set: the transfer expert's timing of its episodes (default: margin; the set of "
                         "the measurements before 2026-12-05 is 'original')")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--d", type=int, default=2)
    ap.add_argument("--s", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--params", default=str(DEFAULT_PARAMS), help="params file with the executor limits")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--spline", type=int, nargs="*", default=None, metavar="K",
                    help="instead: how well K cubic B-splines represent the expert's label chunks")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from rtc_ros.recording.bag import read_sidecar

    if args.eval_set:
        try:
            bags = eval_set(args.eval_set, args.task, expert_schedule=args.expert_schedule)
        except ValueError as exc:
            ap.error(str(exc))
    else:
        bags = sorted(p for p in Path(args.bags).glob("demo_*") if (read_sidecar(p) or {}).get("success"))
    if not bags:
        print(f"no successful demo bags in {args.eval_set or args.bags}", file=sys.stderr)
        return 1
    if args.spline is not None:
        fid = [spline_fidelity(bags[:args.max_bags], k) for k in args.spline]
        print(json.dumps(fid))
        return 0
    if not args.spec:
        ap.error("give at least one policy spec (or --spline K ...)")
    results = [evaluate(sp, bags[:args.max_bags], args.n, args.d, args.s, args.seed, args.params) for sp in args.spec]
    for r in results:
        print(f"{r['spec']}: accel RMS {r['accel_rms_policy']:.2f} vs expert {r['accel_rms_expert']:.2f} "
              f"(x{r['accel_ratio']:.1f}); gripper {r['gripper_policy']['min']:.2f}..{r['gripper_policy']['max']:.2f} "
              f"({100 * r['gripper_policy']['outside_fraction']:.1f} % outside); splices over max_step: rtc "
              f"{100 * r['splice_rtc']['hit_fraction']:.1f} % [{100 * r['splice_rtc']['hit_ci95'][0]:.1f}-"
              f"{100 * r['splice_rtc']['hit_ci95'][1]:.1f}], plain {100 * r['splice_plain']['hit_fraction']:.1f} %"
              + ("" if r["splice_rtc_trained"] is None else
                 f", rtc_trained {100 * r['splice_rtc_trained']['hit_fraction']:.1f} % "
                 f"[{100 * r['splice_rtc_trained']['hit_ci95'][0]:.1f}-{100 * r['splice_rtc_trained']['hit_ci95'][1]:.1f}]"))
    print(json.dumps(results if len(results) > 1 else results[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
