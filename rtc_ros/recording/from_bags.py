"""Train a flow policy from demonstration bags.

``python -m rtc_ros.recording.from_bags BAG_DIR [BAG_DIR ...] --out DIR --name NAME [options]``

1. Reads every episode bag under the BAG_DIRs (recorder bags or ``ros2 bag record`` bags; joint
   states, commands, camera images) -- :mod:`rtc_ros.recording.episode`.
2. Builds the training set with the package's one bags-to-dataset pipeline
   (:mod:`rtc_ros.recording.dataset`, shared with the sim policy trainer): observation as
   ``policy_inference`` builds it from ``obs_spec``; target = the H commands from the observation's
   step on (action 0 = the command executed at the observation's step).
3. Trains the MLP-Mixer flow policy (:func:`rtc_ros.policies.train.fit_flow`, tqdm progress bar);
   normalisation statistics (per joint, per image channel) are fitted on the data.
4. Writes ``DIR/NAME.safetensors`` (weights), ``DIR/NAME.norm.safetensors`` (statistics),
   ``DIR/NAME.yaml`` (policy spec) and ``DIR/NAME_params.yaml``:
   the params file (a copy of ``--params`` with ``policy_spec``, ``horizon`` and the cameras set)
   that ``policy_inference`` / ``chunk_executor`` load -- swapping policies = swapping that file.

Where H, the action joints and the observation layout come from (first found wins):

* H: ``--horizon``, ``--spec`` (a template policy spec: its ``config``), ``--params`` (``horizon``), 50.
* joints (action order, M): ``--params`` (``arms`` + ``<arm>.joint_names``), ``--spec``
  ``joint_names``, else the recorded executor-state / command names.
* obs_spec: ``--obs-spec`` (``joint_positions:14,cam_high:24x32x3``), ``--spec``, else joint
  positions plus one ``--image-size`` entry per ``--camera NAME=TOPIC`` (or the params file's
  ``camera_names`` / ``camera_topics``).

The final stdout line is a JSON summary (paths, samples, final loss).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rtc_ros.recording.dataset import (CUT_SHORT, MAX_INPUT_AGE_S, DatasetError, build_dataset, load_bag_episodes,
                                      recorded_joint_names)
from rtc_ros.recording.demo_dataset import DemoDataset
from rtc_ros.recording.params_file import joint_names_from_params, key_matches, node_sections, training_params

log = logging.getLogger(__name__)


def parse_obs_spec(text: str) -> list[dict[str, Any]]:
    """``"joint_positions:14,cam_high:24x32x3"`` -> ``[{name, shape}, ...]``."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, shape = part.partition(":")
        if not sep:
            raise ValueError(f"obs-spec entry {part!r}: expected name:shape")
        try:
            dims = [int(x) for x in shape.lower().split("x")]
        except ValueError as exc:
            raise ValueError(f"obs-spec entry {part!r}: shape must be like 14 or 24x32x3") from exc
        out.append({"name": name, "shape": dims})
    if not out:
        raise ValueError("empty --obs-spec")
    return out


def recorded_cameras(items: list[str] | None, params: dict[str, Any]) -> dict[str, str]:
    """Camera name -> recorded topic: ``--camera NAME=TOPIC`` items, else the params file's ``camera_names`` /
    ``camera_topics`` (``<topic>/compressed`` with ``camera_transport: compressed``: what was recorded)."""
    cameras: dict[str, str] = {}
    for item in items or []:
        name, sep, topic = item.partition("=")
        if not sep:
            raise DatasetError(f"--camera {item!r}: expected NAME=TOPIC")
        cameras[name] = topic
    if not cameras and params.get("camera_topics"):
        names = params.get("camera_names") or [f"cam{i}" for i in range(len(params["camera_topics"]))]
        suffix = "/compressed" if params.get("camera_transport") == "compressed" else ""
        cameras = {n: t + suffix for n, t in zip(names, params["camera_topics"])}
    return cameras


def _sections(data: dict[str, Any], node: str) -> list[dict[str, Any]]:
    """The ``ros__parameters`` of every section that applies to ``node`` in some namespace (ROS 2 key
    matching, :func:`~rtc_ros.recording.params_file.key_matches`: ``/**``, ``node``, ``/**/node``; and
    ``/<ns>/node``), in file order."""
    return [params for key, params in node_sections(data) if key_matches(key, "/" + node) or key.endswith("/" + node)]


def camera_transport(cameras: dict[str, str]) -> tuple[list[str], str]:
    """The recorded camera topics (obs_spec name -> bag topic) as policy_inference's ``camera_topics`` and
    ``camera_transport``: image_transport's ``<topic>/compressed`` topics are the base topic, compressed
    (policy_inference takes all cameras one way: a mix is refused)."""
    compressed = [t.endswith("/compressed") for t in cameras.values()]
    if any(compressed) and not all(compressed):
        raise DatasetError(f"cameras {cameras}: some are <topic>/compressed and some raw; policy_inference takes "
                           "all of them one way (camera_transport)")
    if cameras and all(compressed):
        return [t[: -len("/compressed")] for t in cameras.values()], "compressed"
    return list(cameras.values()), "raw"


def write_params_file(src: str | Path | None, dest: Path, spec_path: Path, horizon: int,
                      cameras: dict[str, str]) -> Path:
    """A params file for both nodes: ``src`` (if any) with policy_spec / horizon / cameras replaced in every
    section that sets them (``/**/policy_inference`` as much as ``policy_inference``: a section left with the
    old policy_spec would win under a namespace), else added to ``/**/policy_inference``."""
    data: dict[str, Any] = {}
    if src:
        data = yaml.safe_load(Path(src).read_text()) or {}
    shared = data.setdefault("/**", {}).setdefault("ros__parameters", {})
    shared["horizon"] = int(horizon)
    s_min = shared.get("s_min")
    if isinstance(s_min, int) and s_min > horizon // 2:
        shared["s_min"] = max(1, horizon // 2)
        log.warning("s_min %d does not fit H = %d: set to %d in %s", s_min, horizon, shared["s_min"], dest)
    for section in _sections(data, "chunk_executor") + _sections(data, "policy_inference"):
        if "horizon" in section:
            section["horizon"] = int(horizon)
    s_min, rate = shared.get("s_min"), float(shared.get("rate_hz", 50.0))
    for section in _sections(data, "chunk_executor"):  # the executor refuses a ramp the next chunk would cut
        ramp = section.get("startup_ramp_s")
        if isinstance(s_min, int) and isinstance(ramp, (int, float)) and round(ramp * rate) > s_min:
            section["startup_ramp_s"] = s_min / rate if s_min >= 2 else 0.0
            log.warning("startup_ramp_s %g is longer than s_min = %d ticks: set to %g in %s", ramp, s_min,
                        section["startup_ramp_s"], dest)
    topics, transport = camera_transport(cameras)
    new = {"policy_spec": str(spec_path.resolve()), "camera_topics": topics, "camera_names": list(cameras.keys()),
           "camera_transport": transport}
    targets = [sec for sec in _sections(data, "policy_inference") if any(k in sec for k in new)]
    if not targets:
        targets = [data.setdefault("/**/policy_inference", {}).setdefault("ros__parameters", {})]
    for section in targets:
        section.update(new)
    dest.write_text("# generated by python -m rtc_ros.recording.from_bags\n" + yaml.safe_dump(data, sort_keys=False))
    return dest


def _check_args(args: argparse.Namespace) -> None:
    """Refuse bad options before reading bags or training (DatasetError naming the option)."""
    for d in args.bag_dirs:
        if not Path(d).exists():
            raise DatasetError(f"bag directory {d} does not exist")
    for opt, path in (("--params", args.params), ("--spec", args.spec)):
        if path and not Path(path).is_file():
            raise DatasetError(f"{opt} {path}: file not found")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"--out {out}: cannot create it ({exc.strerror or exc})") from exc
    if not os.access(out, os.W_OK):
        raise DatasetError(f"--out {out}: not writable")
    if args.prefix_conditioning < 0:
        raise DatasetError(f"--prefix-conditioning must be >= 0 (0 = off), got {args.prefix_conditioning}")
    if not (math.isfinite(args.obs_std_floor) and args.obs_std_floor > 0):
        raise DatasetError(f"--obs-std-floor must be a number > 0, got {args.obs_std_floor}")
    existing = [p.name for p in (out / f"{args.name}.yaml", out / f"{args.name}.safetensors",
                                 out / f"{args.name}_params.yaml") if p.exists()]
    if existing and not args.overwrite:
        raise DatasetError(f"--out {out} already holds {existing} (policy --name {args.name}); choose another "
                           "--name or --out, or pass --overwrite")


def _image_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise DatasetError(f"--image-size {text!r}: expected HxW, e.g. 32x32") from None
    if h < 1 or w < 1:
        raise DatasetError(f"--image-size {text!r}: H and W must be >= 1")
    return h, w


def dataset_for(args: argparse.Namespace) -> tuple[DemoDataset, dict[str, Any], dict[str, Any]]:
    """Steps 1-2 of the module docstring: ``(dataset, template spec, {cameras, horizon, params})``."""
    params = training_params(args.params)
    template: dict[str, Any] = yaml.safe_load(Path(args.spec).read_text()) if args.spec else {}
    cameras = recorded_cameras(args.camera, params)
    horizon = int(args.horizon or (template.get("config") or {}).get("horizon") or params.get("horizon") or 50)
    if getattr(args, "prefix_conditioning", 0) >= horizon:  # before reading the bags (images can take minutes)
        raise DatasetError(f"--prefix-conditioning {args.prefix_conditioning} must be < H = {horizon}")
    obs_spec = parse_obs_spec(args.obs_spec) if args.obs_spec else template.get("obs_spec")
    if obs_spec:  # the params file's other cameras are not the policy's: not decoded (frames can take minutes)
        images = {str(e["name"]) for e in obs_spec if len(e.get("shape", ())) in (3, 4)}
        cameras = {c: t for c, t in cameras.items() if c in images}
    episodes = load_bag_episodes(args.bag_dirs, cameras, args.joint_states_topic)
    names = joint_names_from_params(params) or template.get("joint_names") or recorded_joint_names(episodes)
    if not names:
        raise DatasetError("cannot tell the action joint names: give --params (arms/joint_names) or --spec")
    dt = float(args.dt or (1.0 / float(params["rate_hz"]) if params.get("rate_hz") else template.get("dt", 0.02)))
    if not obs_spec:
        h, w = _image_size(args.image_size)
        obs_spec = [{"name": "joint_positions", "shape": [len(names)]}] + [{"name": c, "shape": [h, w, 3]}
                                                                           for c in cameras]
    ds = build_dataset(episodes, obs_spec, list(names), horizon, dt, cameras, args.command_topic, args.stride,
                       args.only_success, args.include_status,
                       float(params.get("obs_timeout") or MAX_INPUT_AGE_S))  # (the inputs the nodes would take)
    return ds, template, {"cameras": cameras, "horizon": horizon, "params": params}


def _rebounded(template_spec: str, cfg: dict[str, Any], normalizer: Any) -> dict[str, list[float]]:
    """A template's ``bounded_low/high`` (normalised with the template's statistics) in the units of the
    statistics fitted on the new data: the same raw limits (e.g. a gripper's 0..1)."""
    from rtc_ros.policies.spec import load_policy

    template = load_policy(template_spec)
    old = getattr(template, "inner", template).normalizer  # (a template with robot_units: its own units here)
    scale, offset = (template.units.scale, template.units.offset) if hasattr(template, "units") else (None, None)
    dims = [int(d) for d in cfg["bounded_dims"]]
    mean_t, std_t = np.asarray(old.action_mean), np.asarray(old.action_std)
    mean_n, std_n = np.asarray(normalizer.action_mean), np.asarray(normalizer.action_std)
    raw = {k: [float(v) * std_t[d] + mean_t[d] for d, v in zip(dims, cfg[k])] for k in ("bounded_low", "bounded_high")}
    if scale is not None:  # the bags are in robot units: the same limits there (a flipped joint swaps them)
        raw = {k: [offset[d] + scale[d] * r for d, r in zip(dims, vals)] for k, vals in raw.items()}
        pairs = [sorted(p) for p in zip(raw["bounded_low"], raw["bounded_high"])]
        raw = {"bounded_low": [p[0] for p in pairs], "bounded_high": [p[1] for p in pairs]}
    return {k: [float((r - mean_n[d]) / std_n[d]) for d, r in zip(dims, vals)] for k, vals in raw.items()}


def train_from_bags(args: argparse.Namespace) -> dict[str, Any]:
    """Run the whole pipeline (see module docstring); returns the JSON summary."""
    import torch

    from rtc_ros.policies.mixer import bimanual_h50
    from rtc_ros.policies.plugins import build_model
    from rtc_ros.policies.spec import load_policy, save_policy
    from rtc_ros.policies.train import TrainConfig, fit_flow

    t_start = time.time()
    _check_args(args)
    torch.set_num_threads(max(1, int(args.threads)))
    torch.manual_seed(args.seed)
    ds, template, info = dataset_for(args)
    horizon, cameras, M = info["horizon"], info["cameras"], len(ds.joint_names)
    O = ds.builder.obs_dim
    print(f"dataset: {len(ds)} samples from {len(ds.episodes)} episodes, obs {O}, H {horizon}, M {M}",
          file=sys.stderr, flush=True)
    cfg_kwargs = dict(template.get("config") or {})
    for kv in args.model or []:
        k, sep, v = kv.partition("=")
        try:
            cfg_kwargs[k] = int(v)
        except ValueError:
            raise DatasetError(f"--model {kv!r}: expected KEY=INT (e.g. width=64)") from None
    cfg_kwargs.update(horizon=horizon, action_dim=M, obs_dim=O)
    model_type = template.get("model", "mlp_mixer")
    if model_type == "mlp_mixer":  # bimanual_h50 sizes unless the template/--model say otherwise
        cfg_kwargs = {**vars(bimanual_h50(O)), **cfg_kwargs}
    # the sim recipe's floors (train_sim_policy): a joint that never moved in the demos (an idle arm, a locked
    # wrist) is not scaled by 1e6, so its drift on the robot cannot swamp the other inputs
    normalizer = ds.fit_normalizer(vector_std_floor=args.obs_std_floor, image_std_floor=1e-3, action_std_floor=1e-3)
    if cfg_kwargs.get("bounded_dims"):  # the template's bounds are in its own normalised units: re-express them
        cfg_kwargs.update(_rebounded(args.spec, cfg_kwargs, normalizer))
    model = build_model(model_type, cfg_kwargs)
    losses, _ = fit_flow(model, ds.batch_sampler(normalizer), TrainConfig(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        warmup_steps=min(100, max(1, args.steps // 10)), progress=not args.no_progress,
        prefix_conditioning=args.prefix_conditioning))
    out = Path(args.out)
    final_loss = float(np.mean(losses[-max(1, min(50, len(losses))):]))
    extra = {
        "n_steps": int(template.get("n_steps", 5)), "dt": ds.dt, "joint_names": list(ds.joint_names),
        "training": {
            "source": "rtc_ros.recording.from_bags", "bags": sorted({s["bag"] for s in ds.sources}),
            "episodes": ds.episodes, "samples": len(ds), "steps": args.steps, "batch_size": args.batch_size,
            "lr": args.lr, "seed": args.seed, "final_loss": final_loss, "cameras": cameras,
            "prefix_conditioning": int(args.prefix_conditioning),
            "actions_from": sorted({s["actions_from"] for s in ds.sources}),
            "skipped_across_pause": sum(int(s.get("skipped_across_pause", 0)) for s in ds.sources),
            "skipped_stale_input": sum(int(s.get("skipped_stale_input", 0)) for s in ds.sources),
            "observation_step_rule": sorted({s.get("observation_step_rule", "nearest") for s in ds.sources}),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    }
    spec_path = save_policy(out, args.name, model, normalizer, obs_spec=ds.obs_spec, extra=extra,
                            model_type=model_type)
    loaded = load_policy(spec_path)  # refuse to hand out a spec that does not load
    assert loaded.horizon == horizon and loaded.action_dim == M and loaded.obs_dim == O
    params_path = write_params_file(args.params, out / f"{args.name}_params.yaml", spec_path, horizon, cameras)
    return {
        "spec": str(spec_path), "weights": str(out / f"{args.name}.safetensors"), "params_file": str(params_path),
        "episodes": len(ds.episodes), "samples": len(ds), "skipped_across_pause": extra["training"]["skipped_across_pause"],
        "horizon": horizon, "action_dim": M, "obs_dim": O,
        "steps": args.steps, "loss_first": float(losses[0]), "loss_final": final_loss,
        "seconds": round(time.time() - t_start, 1),
    }


def add_episode_arguments(ap: argparse.ArgumentParser) -> None:
    """The options saying which recorded topics and episodes are used (from_bags and to_lerobot)."""
    ap.add_argument("--command-topic", action="append", default=None,
                    help="commanded-position topic(s), in action order (default: rtc/executor_state, else "
                         "joint_commands / <arm>_controller/commands)")
    ap.add_argument("--joint-states-topic", default="joint_states")
    ap.add_argument("--only-success", action="store_true",
                    help="use only episodes with a success verdict (success true, or the simulator's)")
    ap.add_argument("--include-status", action="append", default=[], choices=CUT_SHORT, metavar="STATUS",
                    help="also use episodes of this status, left out by default as cut short: "
                         + ", ".join(CUT_SHORT) + " (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m rtc_ros.recording.from_bags",
                                 description="Train a flow policy (safetensors + policy spec YAML) "
                                             "from demonstration bags.")
    ap.add_argument("bag_dirs", nargs="+", type=Path, help="directories of episode bags (searched recursively)")
    ap.add_argument("--out", required=True, type=Path, help="output directory")
    ap.add_argument("--name", default="policy_from_bags", help="policy name (file stem)")
    ap.add_argument("--params", default=None, help="ROS params file of the nodes (joints, horizon, rate, cameras); "
                                                   "copied into NAME_params.yaml")
    ap.add_argument("--spec", default=None, help="template policy spec YAML (model config, obs_spec, H)")
    ap.add_argument("--horizon", type=int, default=None, help="H (overrides spec/params)")
    ap.add_argument("--dt", type=float, default=None, help="controller period in s (default 1/rate_hz or 0.02)")
    ap.add_argument("--obs-spec", default=None, help="e.g. joint_positions:14,cam_high:24x32x3")
    ap.add_argument("--camera", action="append", help="NAME=TOPIC image topic feeding obs_spec entry NAME")
    ap.add_argument("--image-size", default="24x32", help="HxW of camera entries when obs_spec is derived (default "
                                                          "24x32; the simulator's camera and the shipped policies: 32x32)")
    add_episode_arguments(ap)
    ap.add_argument("--model", action="append", help="model config override KEY=INT (e.g. width=64, depth=2)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prefix-conditioning", type=int, default=0, metavar="D",
                    help="train for training-time RTC (method rtc_trained): clean prefixes of d ~ U{0..D} actions; "
                         "D at least the largest delay in ticks the robot will see (0 = off)")
    ap.add_argument("--obs-std-floor", type=float, default=0.05,
                    help="lower bound of the fitted std of each joint observation (rad; default 0.05): a joint that "
                         "barely moved in the demos is divided by this, not by its tiny std")
    ap.add_argument("--stride", type=int, default=1, help="use every k-th controller step as a sample")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing policy of this --name in --out")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit 0 on success, 2 on a data problem (message on stderr)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return run_cli(train_from_bags, args)


def run_cli(work: Any, args: argparse.Namespace) -> int:
    """``work(args)``'s summary as the last stdout line (exit 0), or a data problem's message on stderr (exit 2)."""
    try:
        summary = work(args)
    except (DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
