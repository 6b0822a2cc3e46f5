"""The real ``ros2`` CLI against the colcon install: ``ros2 launch rtc_ros sim.launch.py`` (and
``bimanual.launch.py`` next to ``ros2 run rtc_ros bimanual_sim``), ``ros2 topic hz/info/echo``,
``ros2 node list``, ``ros2 param get/set``, two robots in two namespaces, SIGINT shutdown.

Uses a ROS 2 install's ``ros2`` (on PATH with AMENT_PREFIX_PATH set) or the pip-only CLI that
``make test`` installs into .venv from ../shared/ros2-jazzy (scripts/install_ros2_cli.sh); skipped
with the reason otherwise. Every command runs as a subprocess in its own session (process group),
stopped with SIGINT like Ctrl-C; ``--no-daemon`` wherever the verb has it; the module has its own
ROS_DOMAIN_ID. One ``sim.launch.py`` (namespace robot1, episodes until stopped) is shared by the
tests in file order, the last of which stops it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import fresh_domain

REPO = Path(__file__).resolve().parents[1]
INSTALL = Path(os.environ.get("RTC_ROS_INSTALL") or REPO / "install" / "rtc_ros")
VENV_BIN = Path(sys.prefix) / "bin"
NODES = ("bimanual_sim", "chunk_executor", "policy_inference", "episode_recorder", "sim_episodes")


def _find_ros2() -> tuple[str | None, str]:
    """(path of ``ros2``, '') or (None, why not)."""
    system = shutil.which("ros2")
    if system and os.environ.get("AMENT_PREFIX_PATH") and Path(system).parent != VENV_BIN:
        return system, ""
    if (VENV_BIN / "ros2").is_file() and (Path(sys.prefix) / "ros2_env.sh").is_file():
        return str(VENV_BIN / "ros2"), ""
    return None, ("no ros2 CLI: neither a ROS 2 install (`ros2` on PATH, AMENT_PREFIX_PATH set) nor the pip-only "
                  "CLI in .venv (`make test` installs it from ../shared/ros2-jazzy when that folder exists: "
                  "scripts/install_ros2_cli.sh)")


ROS2, WHY = _find_ros2()
if ROS2 and not (INSTALL / "share" / "rtc_ros" / "launch" / "sim.launch.py").is_file():
    ROS2, WHY = None, f"no colcon install of rtc_ros at {INSTALL} (run through `make test`)"
pytestmark = pytest.mark.skipif(ROS2 is None, reason=WHY)


def cli_env(tmp: Path) -> dict[str, str]:
    """Environment for ros2 commands: a domain of their own, localhost, the install and (pip-only) the venv."""
    env = dict(os.environ)
    site = sorted(INSTALL.glob("lib/python3*/site-packages"))
    prefixes = [str(INSTALL)] + ([str(Path(sys.prefix))] if Path(ROS2).parent == VENV_BIN else [])
    env.update({
        "ROS_DOMAIN_ID": str(fresh_domain()), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
        "RCUTILS_LOGGING_BUFFERED_STREAM": "0", "RCUTILS_COLORIZED_OUTPUT": "0", "ROS_LOG_DIR": str(tmp / "ros_log"),
        "PATH": os.pathsep.join([str(Path(ROS2).parent), env.get("PATH", "")]),
        "AMENT_PREFIX_PATH": os.pathsep.join(prefixes + [p for p in [env.get("AMENT_PREFIX_PATH", "")] if p]),
        "PYTHONPATH": os.pathsep.join([str(s) for s in site] + [p for p in [env.get("PYTHONPATH", "")] if p]),
    })
    return env


class Proc:
    """A ros2 command in its own session; output to a log file; ``stop()`` = SIGINT to its process group."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.log = args, log
        self._f = open(log, "ab")
        self.p = subprocess.Popen([ROS2, *args], env=env, stdout=self._f, stderr=subprocess.STDOUT,
                                  start_new_session=True, cwd=str(log.parent))

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float) -> re.Match | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(pattern, self.output())
            if m or self.p.poll() is not None:
                return m or re.search(pattern, self.output())
            time.sleep(0.5)
        return None

    def group_alive(self) -> bool:
        self.p.poll()  # reap our own child: a zombie still counts as a member of the group
        try:
            os.killpg(self.p.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGINT the group, wait for every process of it; SIGKILL what is left after ``timeout``."""
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGINT)
        end = time.monotonic() + timeout
        while self.group_alive() and time.monotonic() < end:
            time.sleep(0.2)
        if self.group_alive():
            os.killpg(self.p.pid, signal.SIGKILL)
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._f.close()
        return self.p.returncode


def ros2(env: dict[str, str], *args: str, timeout: float = 60.0) -> str:
    """Run ``ros2 args...`` to completion in its own session; return stdout + stderr."""
    r = subprocess.run([ROS2, *args], env=env, capture_output=True, text=True, timeout=timeout, start_new_session=True)
    return r.stdout + r.stderr


def ros2_many(env: dict[str, str], *commands: list[str], timeout: float = 60.0) -> list[str]:
    """Run several ``ros2`` queries at once (each mostly waits for discovery); their outputs, in order."""
    procs = [subprocess.Popen([ROS2, *c], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True) for c in commands]
    return [p.communicate(timeout=timeout)[0] for p in procs]


def _parse_frames(out: str) -> list[dict[str, int | str]]:
    rows = []
    for line in out.splitlines():
        if line.startswith("rtc step="):
            rows.append({k: (int(v) if re.fullmatch(r"-?\d+", v) else v)
                         for k, v in (kv.split("=", 1) for kv in line.split()[1:])})
    return rows


def frames(env: dict[str, str], topic: str, tmp: Path, until, timeout: float = 20.0) -> list[dict[str, int | str]]:
    """``rtc/executor_state`` frame_ids (``rtc step=.. seq=.. ... reason=..``), parsed, from ``ros2 topic echo``
    started now, once ``until(rows)`` holds (or after ``timeout`` s: the caller's assertion then fails). The type
    is given: without it echo exits ("could not determine the type") when discovery has not seen the
    publisher within its spin time, which on 2 busy cores happened in about half the two-robot runs."""
    p = Proc(["topic", "echo", "--no-daemon", "--spin-time", "2", "--field", "header.frame_id", topic,
              "sensor_msgs/msg/JointState"], env, tmp / f"echo{topic.replace('/', '_')}_{time.monotonic_ns()}.log")
    end = time.monotonic() + timeout
    rows: list[dict[str, int | str]] = []
    while time.monotonic() < end and p.p.poll() is None:
        time.sleep(0.5)
        rows = _parse_frames(p.output())
        if rows and until(rows):
            break
    p.stop(10.0)
    return _parse_frames(p.output())


def node_list(env: dict[str, str], expected: set[str], tries: int = 3) -> set[str]:
    """``ros2 node list --no-daemon`` (discovery takes a moment: retried until ``expected`` are all there)."""
    nodes: set[str] = set()
    for _ in range(tries):
        nodes = set(ros2(env, "node", "list", "--no-daemon", "--spin-time", "4").split())
        if expected <= nodes:
            break
    return nodes


def param(env: dict[str, str], verb: str, node: str, *args: str) -> str:
    out = ""
    for _ in range(3):  # 'Node not found' until discovery has seen it
        out = ros2(env, "param", verb, "--no-daemon", "--spin-time", "2", node, *args)
        if "Node not found" not in out:
            break
    return out


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """``ros2 launch rtc_ros sim.launch.py namespace:=robot1 episodes:=0`` with episode bags in ``out/bags``."""
    tmp = tmp_path_factory.mktemp("sim_launch")
    env = cli_env(tmp)
    launch = Proc(["launch", "rtc_ros", "sim.launch.py", "namespace:=robot1", "episodes:=0",
                   f"output_dir:={tmp / 'bags'}"], env, tmp / "launch.log")
    launch.tmp, launch.env = tmp, env
    yield launch
    launch.stop()


def test_launch_records_an_episode(sim) -> None:
    t0 = time.monotonic()
    m = sim.wait_for(r"sim_episodes\]: episode 1/inf seed \d+: success=(\w+) progress=(\d) .*\[recorded\]", 240)
    assert m, f"no recorded episode within 240 s:\n{sim.output()[-4000:]}"
    sidecar = json.loads(sorted((sim.tmp / "bags").glob("*/*.json"))[0].read_text())
    assert sidecar["status"] == "completed", sidecar["status"]
    assert sidecar["source"] == "sim.launch.py" and sidecar["method"] == "rtc" and sidecar["extra_latency_ms"] == 100.0
    assert sidecar["score"] == int(m.group(2)) and sidecar["params"]["policy_inference"]["extra_latency_ms"] == 100.0
    print(f"first episode recorded {time.monotonic() - t0:.0f} s after the launch started: {m.group(0)}")


def test_topic_hz_of_a_command_topic(sim) -> None:
    hz = Proc(["topic", "hz", "--window", "10", "/robot1/left_controller/commands"], sim.env, sim.tmp / "hz.log")
    end = time.monotonic() + 30
    while time.monotonic() < end and len(re.findall(r"average rate", hz.output())) < 5 and hz.p.poll() is None:
        time.sleep(0.5)  # one line a second once messages arrive, each over the last 10 messages
    hz.stop(10.0)
    rates = [float(x) for x in re.findall(r"average rate: ([\d.]+)", hz.output())]
    assert len(rates) >= 5, hz.output()
    # short windows, and at least two reports at the rate: an episode reset re-syncs the executor, which
    # then commands nothing until the new episode's first chunk (~0.6 s on a loaded VM), and a loaded VM
    # stalls the processes now and then; a window holding such a gap reads low (a 100-message window held a
    # reset gap for 2 s: three of five reports at 32-38 Hz; with 10-message windows beside a training job
    # two of five read 16 and 18 Hz, make test 2026-12-03). Gaps only lower a report and a catch-up burst
    # raises one, so a 25 Hz publisher gives no report at 45-55 Hz and a 100 Hz one a median near 100.
    at_rate = [r for r in rates if 45.0 <= r <= 55.0]
    median = sorted(rates)[len(rates) // 2]
    assert len(at_rate) >= 2 and median <= 60.0, hz.output()
    print(f"ros2 topic hz: {len(at_rate)} of {len(rates)} reports at 45-55 Hz, median {median:.1f} ({rates})")


def test_node_list_shows_the_nodes(sim) -> None:
    expected = {f"/robot1/{n}" for n in NODES}
    t0 = time.monotonic()
    nodes = node_list(sim.env, expected)
    print(f"node list: {time.monotonic() - t0:.1f} s")
    assert expected <= nodes, nodes
    assert not {f"/{n}" for n in NODES} & nodes, nodes  # namespace applied to every node


@pytest.mark.slow  # flaky in the full default run on 2 cores (chunks not accepted again in time); make test-slow
def test_param_get_set(sim) -> None:
    ex = "/robot1/chunk_executor"
    t0 = time.monotonic()
    assert re.search(r"Double value is: 1\.0\b", param(sim.env, "get", ex, "max_chunk_age"))
    # writable: observations older than 10 ms are refused, so every chunk (+100 ms latency) is rejected as 'age'
    assert "Set parameter successful" in param(sim.env, "set", ex, "max_chunk_age", "0.01")
    # timeouts of 60 s: under the slow tier's load a fresh `ros2 topic echo` has printed nothing within 20 s
    # (2026-12-05: the second echo below came back empty); `until` ends each echo as soon as it holds
    rows = frames(sim.env, "/robot1/rtc/executor_state", sim.tmp, until=lambda rows: len(rows) >= 150,
                  timeout=60.0)  # ~3 s
    assert len(rows) >= 150 and rows[-1]["reason"] == "age", rows[-3:]
    assert len({r["seq"] for r in rows}) == 1, "a chunk took over although every chunk is too old"
    assert "Set parameter successful" in param(sim.env, "set", ex, "max_chunk_age", "1.0")
    seq = rows[-1]["seq"]
    rows2 = frames(sim.env, "/robot1/rtc/executor_state", sim.tmp, until=lambda rows: rows[-1]["seq"] > seq,
                   timeout=60.0)
    assert rows2 and rows2[-1]["seq"] > seq, "no chunk accepted after restoring max_chunk_age"
    # read-only and out of range: refused, unchanged
    q = ["--no-daemon", "--spin-time", "3"]
    ro, bad, get = ros2_many(sim.env, ["param", "set", *q, ex, "horizon", "10"],
                             ["param", "set", *q, "/robot1/policy_inference", "extra_latency_ms", "-5.0"],
                             ["param", "get", *q, ex, "horizon"])
    assert "Setting parameter failed" in ro and "read-only" in ro, ro
    assert "Setting parameter failed" in bad and "extra_latency_ms" in bad, bad
    assert "Integer value is: 50" in get, get
    print(f"param get/set checks: {time.monotonic() - t0:.0f} s")


@pytest.mark.slow  # flaky in the full default run on 2 cores (robot2 not seen up in time); make test-slow
def test_two_robots_in_two_namespaces(sim) -> None:
    """robot2 = ``ros2 run rtc_ros bimanual_sim`` + ``ros2 launch rtc_ros bimanual.launch.py`` (the real-robot
    launch file) next to robot1's sim.launch.py on the same domain: each executor gets only its own chunks."""
    share = INSTALL / "share" / "rtc_ros"
    t0 = time.monotonic()
    robot2 = [Proc(["run", "rtc_ros", "bimanual_sim", "--ros-args", "-r", "__ns:=/robot2", "--params-file",
                    str(share / "config" / "sim_bimanual.yaml")], sim.env, sim.tmp / "robot2_sim.log"),
              Proc(["launch", "rtc_ros", "bimanual.launch.py", "namespace:=robot2",
                    f"policy_spec:={share / 'policies' / 'bimanual_cnn_h50.yaml'}"], sim.env, sim.tmp / "robot2.log")]
    try:
        active = robot2[1].wait_for(r"robot2\.policy_inference\]: warm-up done", 150)
        assert active, f"robot2's policy_inference did not come up:\n{robot2[1].output()[-3000:]}"
        # config/bimanual.yaml starts the executor paused (the arming step): resume it as an operator would
        assert "start_paused: nothing is executed until ~/resume" in robot2[1].output()
        answer = ros2(sim.env, "service", "call", "/robot2/chunk_executor/resume", "std_srvs/srv/Trigger", timeout=60)
        assert "success=True" in answer, answer
        t_up = time.monotonic() - t0
        both = {f"/robot{i}/{n}" for i in (1, 2) for n in ("bimanual_sim", "chunk_executor", "policy_inference")}
        names = node_list(sim.env, both)
        assert both <= names, names
        assert not names & {"/chunk_executor", "/policy_inference", "/bimanual_sim"}, names
        for ns in ("robot1", "robot2"):
            info = ""
            for _ in range(5):  # endpoint -> node names arrive with discovery (_NODE_NAME_UNKNOWN_ until then)
                info = ros2(sim.env, "topic", "info", "-v", "--no-daemon", "--spin-time", "3", f"/{ns}/rtc/chunk")
                if ("Node name: policy_inference" in info and "Node name: chunk_executor" in info
                        and "_NODE_NAME_UNKNOWN_" not in info):
                    break
            pubs, subs = info.split("Subscription count")
            assert "Publisher count: 1" in pubs and "Node name: policy_inference" in pubs, info
            assert "Node name: chunk_executor" in subs, info
            assert set(re.findall(r"Node namespace: (\S+)", info)) == {f"/{ns}"}, info  # nobody else's
        # both executors run on their own chunks: chunks taken over, none refused as out of order or misnamed
        # (robot1's seqs are far ahead: its chunks reaching robot2's executor would make robot2's own 'order')
        for ns in ("robot1", "robot2"):
            rows = frames(sim.env, f"/{ns}/rtc/executor_state", sim.tmp,
                          until=lambda rows: len({r["seq"] for r in rows if r["seq"] >= 0}) >= 2,
                          timeout=60.0)  # two robots' nodes on 2 cores: the echo itself can take ~20 s to print
            assert len({r["seq"] for r in rows if r["seq"] >= 0}) >= 2, (ns, rows[-3:])
            assert not any(r["reason"] in ("order", "names", "future") for r in rows), (ns, rows[-3:])
    finally:
        codes = [p.stop() for p in reversed(robot2)]
    assert not any(p.group_alive() for p in robot2)
    out = robot2[1].output()
    assert len(re.findall(r"process has finished cleanly", out)) == 2, out[-2000:]
    print(f"robot2 up after {t_up:.0f} s, checks and stop {time.monotonic() - t0 - t_up:.0f} s, exit codes {codes}")


def _reaped_before_launch(node: str, out: str) -> bool:
    """``ros2 launch`` could not learn a node's exit code: asyncio's child watcher found the process already reaped
    ("Unknown child process pid N, will report returncode 255": the node exited as launch sent it its own SIGINT
    after the group's, presumably reaped first by Popen.send_signal's poll() -- CI 2026-12-07 late, the recorder, whose
    log showed its episode closed). The process is gone; its exit code is unknown, not an error of the node's. The
    bags are checked below either way."""
    m = re.search(rf"\[ERROR\] \[{node}-\d+\]: process has died \[pid (\d+), exit code 255", out)
    return bool(m) and f"Unknown child process pid {m.group(1)}, will report returncode 255" in out


def test_sigint_stops_everything_and_bags_are_readable(sim) -> None:
    from mcap.reader import make_reader
    from rosbags.highlevel import AnyReader

    assert sim.p.poll() is None, sim.output()[-3000:]
    t0 = time.monotonic()
    sim.stop(timeout=40.0)
    stop_s = time.monotonic() - t0
    assert not sim.group_alive()
    out = sim.output()
    for n in NODES:
        assert re.search(rf"\[{n}-\d+\]: process has finished cleanly", out) or _reaped_before_launch(n, out), \
            f"{n}: not clean:\n{out[-3000:]}"
    bags = sorted(p.parent for p in (sim.tmp / "bags").glob("*/metadata.yaml"))
    assert len(bags) >= 2, bags  # the first episode and at least the one interrupted now
    for bag in bags:
        side = json.loads(next(bag.glob("*.json")).read_text())
        assert side["status"] != "recording", (bag, side["status"])
        with AnyReader([bag]) as reader:
            n_rosbags = sum(1 for _ in reader.messages())
        with open(next(bag.glob("*.mcap")), "rb") as f:
            reader = make_reader(f)
            assert reader.get_summary() is not None  # footer + summary written: closed properly
            n_mcap = sum(1 for _ in reader.iter_messages())
        assert n_rosbags == n_mcap > 0, (bag, n_rosbags, n_mcap)
    print(f"SIGINT: launch and all nodes gone after {stop_s:.1f} s; {len(bags)} bags readable")


@pytest.mark.parametrize("launch_args, message", [
    (["sim.launch.py", "recorder:=rosbag"], r"recorder:=rosbag needs `ros2 bag record`"),
    (["sim.launch.py", "recorder:=bag"], r"Argument .recorder. provided value .bag. is not valid"),
    (["bimanual.launch.py", "record:=true"], r"'record' was replaced by 'recorder'"),
    (["bimanual.launch.py", "nodes:=inference", "recorder:=episode"], r"the recorder runs beside the executor"),
], ids=["rosbag_without_ros2_bag", "bad_recorder", "old_record_argument", "recorder_on_the_inference_side"])
def test_launch_refuses_bad_recorder_arguments(launch_args, message, tmp_path) -> None:
    env = cli_env(tmp_path)
    if launch_args[1] == "recorder:=rosbag" and "ros2bag" in ros2(env, "pkg", "list").split():
        pytest.skip("ros2 bag exists here (ROS 2 install): recorder:=rosbag runs")
    p = Proc(["launch", "rtc_ros", *launch_args], env, tmp_path / "launch.log")
    try:
        p.p.wait(60)
    finally:
        p.stop(10.0)
    out = p.output()
    assert p.p.returncode != 0 and re.search(message, out), out
    assert "process started" not in out, out  # refused before any node starts


def test_bimanual_launch_starts_the_merger_on_request(tmp_path) -> None:
    """``merge_joint_states:=true`` adds joint_state_merger, configured from config/bimanual.yaml's section
    (ALOHA's per-arm topics, prefixed); ``nodes:=executor`` (the robot's side of a policy on another machine)
    starts the executor and the merger but not policy_inference; everything stops cleanly on Ctrl-C."""
    env = cli_env(tmp_path)
    p = Proc(["launch", "rtc_ros", "bimanual.launch.py", "merge_joint_states:=true", "namespace:=robot3",
              "nodes:=executor"], env, tmp_path / "launch.log")
    try:
        up = p.wait_for(r"\[joint_state_merger-\d+\] .*merging puppet_left/joint_states \(prefix 'left_'\), "
                        r"puppet_right/joint_states \(prefix 'right_'\) into joint_states: 14 joints", 90)
        assert up, p.output()[-3000:]
        assert p.wait_for(r"\[chunk_executor-\d+\] .*chunk_executor: method=rtc", 60), p.output()[-3000:]
    finally:
        p.stop()
    out = p.output()
    assert re.search(r"\[joint_state_merger-\d+\]: process has finished cleanly", out), out[-3000:]
    assert re.search(r"\[chunk_executor-\d+\]: process has finished cleanly", out), out[-3000:]
    assert "policy_inference" not in out, out[-3000:]
