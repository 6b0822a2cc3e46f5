# rtc_ros: everything runs from the project venv at .venv/ (git-ignored).
#   make demo  -- set everything up and run the main demo
#   make test  -- set everything up, colcon build, run the tests on the built package
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup build test test-slow demo bench clean

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

demo: setup
	$(PY) -m rtc_ros.benchmarks.toy_demo

bench: setup
	$(PY) -m rtc_ros.benchmarks.latency

clean:
	rm -rf build install log
