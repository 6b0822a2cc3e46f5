# rtc_ros: everything runs from the project venv at .venv/ (git-ignored).
#   make demo  -- set everything up and run the main demo
#   make test  -- set everything up, colcon build, run the tests on the built package (with the ROS 2 CLI
#                 from ../shared/ros2-jazzy when that folder exists: see scripts/install_ros2_cli.sh; and
#                 the LeRobot tier where the pinned torch wheel is in a local wheel store)
#   make test-lerobot -- set up .venv-lerobot (LeRobot, ~6 GB) and run test/lerobot/ in it
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LEROBOT_VENV := .venv-lerobot
ROS2CLI_SRC ?= ../shared/ros2-jazzy

.PHONY: setup ros2cli build test test-slow test-lerobot setup-lerobot demo toy-demo sim-latency figure5 bench clean

$(STAMP): requirements.txt requirements-sim.txt constraints.txt scripts/setup_venv.sh
	bash scripts/setup_venv.sh "$(PYTHON)" "$(VENV)"
	touch $(STAMP)

setup: $(STAMP)

# `ros2 launch/run/topic/node/param` in the venv for test/test_ros2_cli.py: installed once (stamp in the venv)
# when $(ROS2CLI_SRC) exists; skipped (with a note) without it or when a ROS 2 install provides `ros2`.
ros2cli: setup
	bash scripts/install_ros2_cli.sh "$(VENV)" "$(ROS2CLI_SRC)"

build: setup
	$(VENV)/bin/colcon --log-base log build --paths . --build-base build --install-base install \
	    --event-handlers console_cohesion- summary+ status- 2>&1 | tail -n 5

test: build ros2cli
	bash scripts/run_tests.sh
	@if reason=$$(bash scripts/lerobot_wheels_available.sh "$(LEROBOT_VENV)"); then \
	    $(MAKE) --no-print-directory test-lerobot; \
	else echo "SKIPPED test-lerobot (LeRobot tier): $$reason"; fi

# The optional LeRobot tier: its own venv (lerobot pins an older torch; see requirements-lerobot.txt)
$(LEROBOT_VENV)/.installed: requirements-lerobot.txt constraints.txt scripts/setup_lerobot_venv.sh
	bash scripts/setup_lerobot_venv.sh "$(PYTHON)" "$(LEROBOT_VENV)"

setup-lerobot: $(LEROBOT_VENV)/.installed

test-lerobot: setup-lerobot
	bash scripts/run_lerobot_tests.sh

test-slow: build ros2cli
	bash scripts/run_tests.sh -m slow

# Main demo: simulated bimanual ViperX arms + chunk_executor + policy_inference (RTC, +100 ms
# injected latency), 3 recorded episodes, metrics and plots under runs/demo/.
demo: setup
	$(PY) -m rtc_ros.experiments.demo --out runs/demo

toy-demo: setup
	$(PY) -m rtc_ros.benchmarks.toy_demo

# one run per task, each with its own policy; compute times fixed as in docs/sim_experiment.md
sim-latency: setup
	$(PY) -m rtc_ros.experiments.sim_latency --tasks transfer_cube --policy policies/bimanual_cnn_h50.yaml \
	    --compute-ms plain=6,guided=13,bid=85 --out runs/sim_latency/transfer_cube
	$(PY) -m rtc_ros.experiments.sim_latency --tasks conveyor_cube --policy policies/bimanual_cnn_conveyor_h50.yaml \
	    --compute-ms plain=6,guided=13,bid=85 --out runs/sim_latency/conveyor_cube
	$(PY) -m rtc_ros.experiments.sim_tables runs/sim_latency/transfer_cube/results.json \
	    runs/sim_latency/conveyor_cube/results.json --combine runs/sim_latency/results.json

figure5: setup
	$(PY) -m rtc_ros.benchmarks.delay_sweep --out runs/figure5

bench: setup
	$(PY) -m rtc_ros.benchmarks.latency

clean:
	rm -rf build install log
