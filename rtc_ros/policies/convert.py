"""Convert a policy spec of the old format to the current one (no retraining).

``python -m rtc_ros.policies.convert SPEC.yaml [SPEC.yaml ...] [--out DIR]``

The old format kept the normalisation statistics in the YAML as per-dimension lists (for an image,
one value per pixel and channel: thousands of lines). The current format keeps them per entry in
``<name>.norm.safetensors`` (:mod:`rtc_ros.policies.stats`): per element for vector entries, per
channel for images. The conversion is refused (:class:`~rtc_ros.policies.stats.StatsError`) unless
it is exact, i.e. unless every image entry's per-pixel statistics are constant within each channel.

After writing, the converted spec is loaded and compared with the original: the normalisation
arrays, the normalised form of random observations and a chunk sampled from the same noise must
agree (:func:`convert_spec` returns the differences; the weights file is not touched). The final
stdout line is a JSON report.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from rtc_ros.core.sampling import sample_plain
from rtc_ros.policies.spec import LoadedPolicy, PolicySpecError, default_obs_spec, load_policy, stats_file_name
from rtc_ros.policies.stats import save_stats

log = logging.getLogger(__name__)

#: largest normalised-observation difference accepted as "the same policy" (float32 rounding)
OBS_TOLERANCE = 1e-6


def compare_policies(a: LoadedPolicy, b: LoadedPolicy, seed: int = 0, n_obs: int = 8) -> dict[str, float]:
    """Differences between two loaded policies on the same inputs.

    Observations: ``n_obs`` random ``(O,)`` vectors (uniform in [0, 1] -- the range of image pixels and
    of typical joint values). Chunks: Euler sampling (``n_steps`` of ``a``) from the same seeded noise.

    Returns:
        ``{"stats_max_abs", "norm_obs_max_abs", "chunk_max_abs"}`` (0.0 = identical).
    """
    na, nb = a.normalizer, b.normalizer
    stats = max(float(np.max(np.abs(getattr(na, k) - getattr(nb, k))))
                for k in ("obs_mean", "obs_std", "action_mean", "action_std"))
    rng = np.random.default_rng(seed)
    obs = rng.uniform(0.0, 1.0, size=(n_obs, a.obs_dim)).astype(np.float32)
    norm_diff = float(np.max(np.abs(na.norm_obs(obs) - nb.norm_obs(obs))))
    noise = torch.randn((n_obs, a.horizon, a.action_dim), generator=torch.Generator().manual_seed(seed))
    chunks = []
    for pol in (a, b):
        with torch.no_grad():
            out = sample_plain(pol.model, torch.from_numpy(pol.normalizer.norm_obs(obs)), noise.clone(), a.n_steps)
        chunks.append(pol.normalizer.denorm_actions(out.numpy()))
    return {"stats_max_abs": stats, "norm_obs_max_abs": norm_diff,
            "chunk_max_abs": float(np.max(np.abs(chunks[0] - chunks[1])))}


def convert_spec(path: str | Path, out_dir: str | Path | None = None, seed: int = 0) -> dict[str, Any]:
    """Convert the old-format spec at ``path`` (in place, or into ``out_dir`` with a copy of the weights).

    Returns:
        ``{"spec", "normalization", "yaml_lines_before", "yaml_lines_after", **compare_policies}``.

    Raises:
        PolicySpecError: the spec is not of the old format, or does not load.
        rtc_ros.policies.stats.StatsError: image statistics that vary within a channel (the
            conversion would change the policy's behaviour; nothing is written).
        RuntimeError: the converted policy differs from the original (should not happen).
    """
    path = Path(path)
    old = load_policy(path)  # validates; logs the deprecation warning
    spec = dict(old.spec)
    if not isinstance(spec["normalization"], dict):
        raise PolicySpecError(f"policy spec {path}: field 'normalization': already a statistics file "
                              f"({spec['normalization']!r}), nothing to convert")
    out = Path(out_dir) if out_dir is not None else path.parent
    out.mkdir(parents=True, exist_ok=True)
    obs_spec = spec.get("obs_spec") or default_obs_spec(old.obs_dim)
    name = str(spec.get("name") or path.stem)
    norm_file = stats_file_name(name)
    target = out / norm_file
    fresh = save_stats(out / f".{norm_file}.tmp", old.normalizer, obs_spec)  # refuses inexact (per-pixel) statistics
    if target.exists() and not _same_tensors(target, fresh):  # (an audit: a retrained copy keeping the
        fresh.unlink()  # spec's name overwrote the first policy's statistics, which then loaded the copy's)
        raise PolicySpecError(f"policy spec {path}: field 'name': {target} exists with other statistics (another "
                              f"policy named {name!r}?): give this spec another name, or convert it into another "
                              "folder (out_dir)")
    fresh.replace(target)
    if out.resolve() != path.parent.resolve():
        shutil.copy2(path.parent / str(spec["weights"]), out / Path(str(spec["weights"])).name)
        spec["weights"] = Path(str(spec["weights"])).name
    spec["normalization"] = norm_file
    text_before = path.read_text()
    new_path = out / path.name
    new_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    new = load_policy(new_path)
    diff = compare_policies(old, new, seed)
    if diff["norm_obs_max_abs"] > OBS_TOLERANCE or diff["chunk_max_abs"] != 0.0:
        new_path.write_text(text_before)  # leave the original as it was
        raise RuntimeError(f"converted policy {new_path} differs from the original: {diff}")
    return {"spec": str(new_path), "normalization": str(out / norm_file),
            "yaml_lines_before": text_before.count("\n"), "yaml_lines_after": new_path.read_text().count("\n"), **diff}


def _same_tensors(a: Path, b: Path) -> bool:
    """Two safetensors files hold the same tensors (their headers' key order varies from one write to the next)."""
    from safetensors.numpy import load_file

    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit 0 when every spec was converted, 2 otherwise (message on stderr)."""
    ap = argparse.ArgumentParser(prog="python -m rtc_ros.policies.convert", description=__doc__.split("\n\n")[0])
    ap.add_argument("specs", nargs="+", type=Path, help="old-format policy spec YAML files")
    ap.add_argument("--out", type=Path, default=None, help="output directory (default: convert in place)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the before/after comparison")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    reports = []
    for spec in args.specs:
        try:
            reports.append(convert_spec(spec, args.out, args.seed))
        except (PolicySpecError, ValueError, RuntimeError) as exc:
            print(f"error: {spec}: {exc}", file=sys.stderr)
            return 2
    print(json.dumps(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
