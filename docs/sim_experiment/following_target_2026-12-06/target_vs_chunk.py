"""How often, at plan time in the simulated closed loop, is the executor off the chunk (the new target differs
from the chunk's actions)? 20 RTC episodes at +0 ms, default policy, seeds 10000-10019."""
import numpy as np, sys
import rtc_ros.runtime.inference_loop as il
from rtc_ros.runtime.hold_model import HoldModel, remaining_actions
from rtc_ros.experiments.runner import DEFAULT_CONFIG
from rtc_ros.experiments.sim_setup import load_setup, make_sim
from rtc_ros.experiments.sim_offline import Episode
from rtc_ros.sim.camera import CameraRenderer
lat = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
diffs = []
def wrapped(chunk, origin, t_obs, t_next, commanded, command, hold):
    new = remaining_actions(chunk, origin, t_obs, t_next, commanded, command, hold)
    old = remaining_actions(chunk, origin, t_obs, t_next, commanded, command, HoldModel(hold.accel))
    n = min(len(new), len(old))
    diffs.append(float(np.abs(new[:n] - old[:n]).max() / 0.062))
    return new
il.remaining_actions = wrapped
setup = load_setup(DEFAULT_CONFIG, "policies/bimanual_cnn_h50.yaml")
sim = make_sim("transfer_cube", int(setup.sim_params.max_episode_steps), setup.stop_config)
ep = Episode(setup, sim, CameraRenderer(sim.model, setup.camera), "transfer_cube")
for i in range(20):
    ep.run("rtc", lat, 13.0, 10000 + i)
d = np.asarray(diffs)
print(f"+{lat:g} ms: plans {len(d)}, target differs from the chunk in {int((d > 1e-12).sum())}, "
      f"> 0.1 max_step in {int((d > 0.1).sum())}, > 0.5 in {int((d > 0.5).sum())}, max {d.max():.3f} max_step")
