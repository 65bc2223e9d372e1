# `make train` and `make test` work on a fresh machine: they make .venv and install dspjax into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install train test bench experiments clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,onnx]"
	touch $@

install: $(BIN)/.installed

train: install          ## the default job: PPO+DSP on gymnax CartPole-v1, 3 seeds
	$(BIN)/dspjax train $(ARGS)

test: install           ## the whole test suite (19-39 minutes on 2 CPU cores after the install, 39 on a day this shared CPU ran 1.6x slower; -m "not slow" skips the slow ones)
	$(BIN)/python -m pytest $(ARGS)

bench: install          ## benchmarks: population scaling, DSP's cost, host bridge, inference, segments, two processes, JAX highway (vs highway-env and HighJax from HIGHJAX_SRC if present), brax vs MuJoCo
	$(BIN)/python benchmarks/population_scaling.py $(ARGS)
	$(BIN)/python benchmarks/dsp_cost.py
	$(BIN)/python benchmarks/bridge_overhead.py
	$(BIN)/python benchmarks/inference.py
	$(BIN)/python benchmarks/segment_overhead.py
	$(BIN)/python benchmarks/distributed.py
	$(BIN)/python benchmarks/highway_step.py
	$(BIN)/python benchmarks/continuous_env_steps.py

experiments: install    ## regenerate experiments/cartpole (about 10 minutes on 2 CPU cores)
	bash experiments/cartpole/run.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis runs
