"""``rtc_bringup``: start chunk_executor and policy_inference from one params file, without ROS launch.

The pip-only counterpart of ``launch/bimanual.launch.py`` (``launch``/``launch_ros`` and the ``ros2``
CLI are not needed): the same nodes, the same params file, the same namespace / sim-time / policy
options. It validates the params file for both nodes first (refusing with the parameter named),
writes a copy with the command-line overrides merged into the file's own sections (``-p`` on the
command line would lose against node-specific sections of the file), starts each node as
``python -m rtc_ros.nodes.<node> --ros-args --params-file ...``, forwards Ctrl-C / SIGTERM, and
stops everything when one node exits.

Examples::

    rtc_bringup --params-file config/bimanual.yaml --policy-spec models/bimanual.yaml
    rtc_bringup --params-file config/bimanual.yaml --namespace robot1 --method sync --only executor
    rtc_bringup ... --merge-joint-states   # also joint_state_merger: per-arm driver topics -> joint_states
    rtc_bringup ... --record bags/run1   # ros2 bag record if `ros2 bag` exists (a ROS 2 install), else episode_recorder
    rtc_bringup ... --record bags/run1 --episode-recorder   # always the episode_recorder node
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from rtc_ros.nodes.launch_support import policy_cameras, record_regex, recorder_cameras, ros2_bag_missing
from rtc_ros.runtime.methods import METHODS
from rtc_ros.nodes.params.yaml_file import StraySectionError, integer_for_float, rcl_load, stray_in_files
from rtc_ros.nodes.params import (
    ROLE_EXECUTOR,
    ROLE_INFERENCE,
    ROLE_MERGER,
    ROLE_RECORDER,
    ParameterError,
    executor_notes,
    hold_model_notes,
    expand_path,
    key_matches,
    load_params_file,
    moved_parameters,
    misspelt_error,
    package_roots,
    unknown_parameters,
    unknown_text,
    validate,
)

WARNINGS = [0]  # warnings printed so far (--check --strict fails on any)


def _warn(text: str) -> None:
    WARNINGS[0] += 1
    print(f"rtc_bringup: warning: {text}", flush=True)


NODES = {"executor": ("chunk_executor", "rtc_ros.nodes.chunk_executor", ROLE_EXECUTOR),
         "inference": ("policy_inference", "rtc_ros.nodes.policy_inference", ROLE_INFERENCE),
         "merger": ("joint_state_merger", "rtc_ros.nodes.joint_state_merger", ROLE_MERGER)}


def selected(args: argparse.Namespace) -> list[str]:
    """The node keys to check and start: ``--only``'s, else executor and inference (and the merger with
    ``--merge-joint-states``, also beside ``--only executor``: the robot's side, as ``nodes:=executor``)."""
    if args.only:
        return [args.only] + (["merger"] if args.only == "executor" and args.merge_joint_states else [])
    return ["executor", "inference"] + (["merger"] if args.merge_joint_states else [])


def default_params_file() -> Path:
    """``config/bimanual.yaml`` of the source tree, or of the installed package share (a pip install's, or the
    ament index's: a colcon install, where it was looked for in site-packages -- an audit)."""
    here = Path(__file__).resolve().parents[2] / "config" / "bimanual.yaml"
    if here.is_file():
        return here
    for root in package_roots()[1:]:
        if (root / "config" / "bimanual.yaml").is_file():
            return root / "config" / "bimanual.yaml"
    return here


RECORDER = "episode_recorder"


def episode_recorder(args: argparse.Namespace) -> bool:
    """``--record`` starts the episode_recorder node (not ``ros2 bag record``)."""
    return bool(args.record) and (args.episode_recorder or ros2_bag_missing() is not None)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="rtc_bringup", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params-file", type=Path, default=default_params_file(), help="ROS 2 params YAML for both nodes")
    ap.add_argument("--namespace", default="", help="ROS namespace for both nodes (relative topics follow it)")
    ap.add_argument("--policy-spec", default=None, help="policy spec YAML (sets RTC_POLICY_SPEC and policy_spec)")
    ap.add_argument("--method", choices=METHODS, default=None, help="override the method for both nodes")
    ap.add_argument("--device", default=None, help="override policy_inference's device (auto/cpu/cuda)")
    ap.add_argument("--extra-latency-ms", type=float, default=None, help="inject inference delay (ms)")
    ap.add_argument("--use-sim-time", action="store_true", help="both nodes follow /clock")
    ap.add_argument("--only", choices=tuple(NODES), default=None, help="start only one of the nodes")
    ap.add_argument("--merge-joint-states", action="store_true",
                    help="also start joint_state_merger (per-arm joint state topics -> joint_states; its section "
                         "of the params file names the sources)")
    ap.add_argument("--record", default=None, metavar="BAG_DIR",
                    help="record into BAG_DIR: 'ros2 bag record' where it exists (a ROS 2 install with rosbag2), "
                         "otherwise the episode_recorder node (one MCAP bag per episode)")
    ap.add_argument("--episode-recorder", action="store_true",
                    help="with --record: use the episode_recorder node even where 'ros2 bag' exists")
    ap.add_argument("--check", action="store_true", help="validate the params, load the policy, fit it to them and "
                    "sample it once (what policy_inference checks when it starts), then exit")
    ap.add_argument("--strict", action="store_true", help="with --check: exit 1 when any warning was printed "
                    "(limits left at their defaults, degrees, a no-op dry run ...): a gate for scripts")
    return ap.parse_args(argv)


def _merge_overrides(data: dict[str, Any], node: str, overrides: dict[str, Any], namespace: str = "") -> None:
    """Put ``overrides`` into every section of ``data`` that applies to ``node`` under ``namespace`` (``/**``, a
    ``robot1/<node>`` section ...; an audit: a namespaced section kept its own method against ``--method``), or into
    a section of its own when none does."""
    if not overrides:
        return
    fq = "/" + "/".join(p for p in (namespace.strip("/"), node) if p)
    hit = False
    for key, section in data.items():
        if isinstance(section, dict) and isinstance(key, str) and key_matches(key, fq):
            section.setdefault("ros__parameters", {}).update(overrides)
            hit = True
    if not hit:
        data.setdefault(fq, {"ros__parameters": {}})["ros__parameters"].update(overrides)


def build_params(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    """(merged params data, validated values per node key, the values the params file gives each node key). Raises
    ParameterError / ValueError."""
    data = rcl_load(args.params_file.read_text()) or {}  # (as the nodes' rcl reads it: 5e-1 a number)
    if not isinstance(data, dict):
        raise ValueError(f"{args.params_file}: top level must be a mapping")
    data = copy.deepcopy(data)
    for key in selected(args):  # (the nodes refuse them too: a dry_run there would be ignored under the namespace)
        node = NODES[key][0]
        for text, addressed in stray_in_files(["--ros-args", "--params-file", str(args.params_file)], node,
                                              args.namespace or ""):  # (the nodes' own check, on this file)
            if not addressed:
                raise StraySectionError(text)
            _warn(text)
    shared: dict[str, Any] = {}
    if args.method:
        shared["method"] = args.method
    if args.use_sim_time:
        shared["use_sim_time"] = True
    inference: dict[str, Any] = {}
    if args.policy_spec:
        inference["policy_spec"] = str(Path(args.policy_spec).resolve())
    if args.device:
        inference["device"] = args.device
    if args.extra_latency_ms is not None:
        inference["extra_latency_ms"] = float(args.extra_latency_ms)
    for key, (node, _, _) in NODES.items():
        _merge_overrides(data, node, shared | (inference if key == "inference" else {}), args.namespace or "")
    recording = episode_recorder(args)
    if recording:  # (given as -p before: a file's episode_recorder section won, the bags went elsewhere -- an audit)
        _merge_overrides(data, RECORDER, {"output_dir": str(Path(args.record).resolve()),
                                          **({"use_sim_time": True} if args.use_sim_time else {})}, args.namespace or "")
    checked, given = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "params.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        if recording:  # the policy's cameras when its section names none; checked as the recorder checks them
            _merge_overrides(data, RECORDER, recorder_cameras(str(path), args.namespace or ""), args.namespace or "")
            path.write_text(yaml.safe_dump(data, sort_keys=False))
            values = load_params_file(path, RECORDER, args.namespace)
            validate({k: v for k, v in values.items() if k != "use_sim_time"}, ROLE_RECORDER)
        for key in selected(args):
            node, _, role = NODES[key]
            values = given[key] = load_params_file(path, node, args.namespace)
            for name, meant in unknown_parameters(sorted(values), values.get("arms") or ()):
                refusal = misspelt_error(name, values[name], meant, values.get("arms") or (), node)
                if refusal is not None:  # (the node refuses it too)
                    raise refusal
                _warn(f"{node}: {unknown_text(name, meant)}")
            if (bad := integer_for_float(values, role)) is not None:  # (the node's declare refuses it)
                raise ParameterError(bad[0], bad[1], "is an integer, but the parameter is floating-point and the "
                                     "node refuses it (write e.g. 50.0, not 50)")
            checked[key] = validate({k: v for k, v in values.items() if k != "use_sim_time"}, role)
        inference = load_params_file(path, NODES["inference"][0], args.namespace) if "executor" in given else {}
    for name in (n for n in inference if moved_parameters([n], ROLE_INFERENCE) and n not in given["executor"]):
        lost = (f"chunk_executor does not check {name.split('.')[0]}'s joints" if "." in name
                else "chunk_executor uses its default")  # (the watchdog moved to the executor on 2026-12-06)
        _warn(f"{name} is set for policy_inference only, which no longer reads it: {lost}; "
              "move it to chunk_executor's section (or /**)")
    return data, checked, given


#: chunks ``--check`` samples at the policy's typical observation to try against the executor's limits
LIMIT_SAMPLES = 8


def _check_policy(p, ex=None) -> int:
    """``--check``: what policy_inference checks when it starts (load, fit to the params, one plain and one
    guided sample, its velocity's gradient), with its errors; 0 if it would start. With the executor's parameters
    ``ex``, :data:`LIMIT_SAMPLES` plain chunks at the typical observation are also tried against its ``limits``
    refusal (a warning: the normalisation mean is no real observation)."""
    if p is None:  # --only executor
        return 0
    from rtc_ros.nodes.policy_setup import prepare_policy

    try:
        prepared = prepare_policy(p)
    except ParameterError as exc:
        print(f"rtc_bringup: policy_inference would refuse to start: {exc}", file=sys.stderr)
        return 2
    for note in (*prepared.notes, *_limit_notes(prepared, ex)):
        _warn(note)
    print(f"rtc_bringup: policy {expand_path(p.policy_spec)} fits (cameras {prepared.fit.cameras}) and samples",
          flush=True)
    return 0


def _limit_notes(prepared, ex) -> list[str]:
    """Chunks sampled at the typical observation that chunk_executor (params ``ex``) would refuse (``limits``)."""
    if ex is None or not float(ex.max_limit_excess) > 0:
        return []
    import numpy as np
    import torch

    from rtc_ros.runtime.chunk_validation import beyond_limits

    lower, upper = np.concatenate([a.lower for a in ex.arms]), np.concatenate([a.upper for a in ex.arms])
    obs = torch.as_tensor(prepared.policy.typical_observation(), dtype=torch.float32).reshape(1, -1)
    rng = torch.Generator().manual_seed(0)
    why = [beyond_limits(prepared.generator.sample(obs, None, 0, 0, generator=rng)[0].double().cpu().numpy(),
                         lower, upper, float(ex.max_limit_excess), list(ex.joint_names)) for _ in range(LIMIT_SAMPLES)]
    bad = [w for w in why if w]
    if not bad:
        return []
    return [f"{len(bad)} of {LIMIT_SAMPLES} chunks sampled at the policy's typical observation (its normalisation "
            f"mean) would be refused by chunk_executor (reason limits): {bad[0]}. Check the arms' lower_limits / "
            "upper_limits, the joint order and the policy's units (robot_units) before the robot runs it"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    WARNINGS[0] = 0
    if args.record and args.only == "inference":
        print("rtc_bringup: refusing to start: --record with --only inference: the recorder runs beside the executor, "
              "one per robot (give --record to the robot's side)", file=sys.stderr)
        return 2
    if args.policy_spec:
        os.environ["RTC_POLICY_SPEC"] = str(Path(args.policy_spec).resolve())
    try:
        data, checked, given = build_params(args)
    except (ParameterError, ValueError, OSError) as exc:
        print(f"rtc_bringup: refusing to start: {exc}", file=sys.stderr)
        return 2
    for key, p in checked.items():
        if key == "merger":
            print(f"rtc_bringup: joint_state_merger: {', '.join(p.source_topics)} -> {p.joint_states_topic}, "
                  f"{len(p.joint_names)} joints", flush=True)
            continue
        print(f"rtc_bringup: {NODES[key][0]}: method={p.method} H={p.horizon} s_min={p.s_min} "
              f"rate={p.rate_hz:g} Hz, {len(p.joint_names)} joints", flush=True)
    both = "executor" in checked and "inference" in checked
    for note in hold_model_notes(checked["executor"], checked["inference"]) if both else []:
        _warn(note)
    if args.check:
        for note in executor_notes(checked["executor"], given.get("executor")) if "executor" in checked else []:
            if note.startswith("dry_run:"):  # (chosen: --strict must pass a bring-up's dry-run file, a walkthrough)
                print(f"rtc_bringup: note: chunk_executor: {note}", flush=True)
            else:
                _warn(f"chunk_executor: {note}")
        rc = _check_policy(checked.get("inference"), checked.get("executor"))
        if rc == 0 and args.strict and WARNINGS[0]:
            print(f"rtc_bringup: --strict: {WARNINGS[0]} warning(s) above", file=sys.stderr)
            return 1
        return rc
    tmpdir = Path(tempfile.mkdtemp(prefix="rtc_bringup_"))
    params_path = tmpdir / "params.yaml"
    params_path.write_text(yaml.safe_dump(data, sort_keys=False))
    ros_args = ["--ros-args", "--params-file", str(params_path)]
    if args.namespace:
        ros_args += ["-r", f"__ns:=/{args.namespace.strip('/')}"]
    procs: list[tuple[str, subprocess.Popen]] = []
    for key in selected(args):
        node, module, _ = NODES[key]
        procs.append((node, subprocess.Popen([sys.executable, "-m", module, *ros_args])))
    if episode_recorder(args):  # output_dir, use_sim_time and the policy's cameras are in the params copy
        procs.append((RECORDER, subprocess.Popen([sys.executable, "-m", "rtc_ros.nodes.episode_recorder", *ros_args])))
    elif args.record:  # `ros2 bag record` where it exists (the pip-only ros2 CLI has none)
        cmd = [shutil.which("ros2") or "ros2", "bag", "record", "-o", args.record,
               *(["--use-sim-time"] if args.use_sim_time else []), "-e",
               record_regex(args.namespace or "", policy_cameras(str(params_path), args.namespace or ""))]
        procs.append(("ros2 bag record", subprocess.Popen(cmd)))

    stopping = {"flag": False}

    def forward(signum, _frame) -> None:
        stopping["flag"] = True
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    rc = 0
    try:
        while procs and all(p.poll() is None for _, p in procs):
            time.sleep(0.2)
        for name, p in procs:
            if p.poll() is not None and p.returncode not in (0, None) and not stopping["flag"]:
                print(f"rtc_bringup: {name} exited with {p.returncode}; stopping the others", file=sys.stderr)
                rc = p.returncode or 1
        forward(signal.SIGINT, None)
        deadline = time.monotonic() + 10
        for _, p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # finalization would reset `forward` to SIG_DFL (exit -2)
    return rc


if __name__ == "__main__":
    sys.exit(main())
