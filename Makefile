# rtc_ros: everything runs from the project venv at .venv/ (git-ignored).
#   make demo  -- set everything up and run the main demo
#   make test  -- set everything up, colcon build, run the tests on the built package
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup build test test-slow demo toy-demo sim-latency figure5 bench clean

$(STAMP): requirements.txt requirements-sim.txt constraints.txt scripts/setup_venv.sh
	bash scripts/setup_venv.sh "$(PYTHON)" "$(VENV)"
	touch $(STAMP)

setup: $(STAMP)

build: setup
	$(VENV)/bin/colcon --log-base log build --paths . --build-base build --install-base install \
	    --event-handlers console_cohesion- summary+ status- 2>&1 | tail -n 5

test: build
	bash scripts/run_tests.sh

test-slow: build
	bash scripts/run_tests.sh -m slow

# Main demo: simulated bimanual ViperX arms + chunk_executor + policy_inference (RTC, +100 ms
# injected latency), 3 recorded episodes, metrics and plots under runs/demo/.
demo: setup
	$(PY) -m rtc_ros.experiments.demo --out runs/demo

toy-demo: setup
	$(PY) -m rtc_ros.benchmarks.toy_demo

sim-latency: setup
	$(PY) -m rtc_ros.experiments.sim_latency --out runs/sim_latency

figure5: setup
	$(PY) -m rtc_ros.benchmarks.delay_sweep --out runs/figure5

bench: setup
	$(PY) -m rtc_ros.benchmarks.latency

clean:
	rm -rf build install log
