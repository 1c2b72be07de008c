# The two commands of the quick start: `make demo` and `make test`. Both set up .venv first when needed.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup demo demo-deblur test test-fast lint lock image-lock bench image clean

setup: $(STAMP)

$(STAMP): requirements.lock setup.py scripts/setup_env.sh
	@bash scripts/setup_env.sh
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gan-restore demo $(DEMO_ARGS)

demo-deblur: $(STAMP)
	$(VENV)/bin/gan-restore demo --task deblur $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Re-resolve the pinned working set after editing requirements.in, then the image's set from it.
lock: $(STAMP)
	$(VENV)/bin/uv pip compile requirements.in --python-version 3.10 --quiet -o requirements.lock
	$(MAKE) image-lock

# The container image's set (docker/requirements-image.in): the working set above as constraints plus
# TensorFlow's CUDA wheels, resolved for Linux x86_64 without installing anything.
IMAGE_LOCK_ARGS := -c requirements.lock --python-version 3.10 --python-platform x86_64-manylinux_2_28 --quiet
image-lock: $(STAMP)
	$(VENV)/bin/uv pip compile docker/requirements-image.in $(IMAGE_LOCK_ARGS) -o $(or $(IMAGE_LOCK),docker/requirements-image.lock)

# Benchmarks (docs/benchmarks.md); not part of `make test`. The PyTorch peer runs in its own Python 3.11
# venv (.venv-torch), created here when missing. BENCH_ARGS=--quick checks everything runs end to end.
bench: $(STAMP)
	@bash scripts/setup_torch_env.sh || echo "bench: PyTorch venv unavailable; TF figures only"
	$(PY) -m benchmarks.run_all $(BENCH_ARGS)

# The pipeline's container image (docker/Dockerfile) for Kubeflow Pipelines; IMAGE defaults to
# kubeflow.image of the config. Needs a Docker engine; push it where the cluster can pull from.
IMAGE ?= $(shell $(PY) -c 'from config import preset; print(preset("tiny").kubeflow.image)')
image: $(STAMP)
	docker build -f docker/Dockerfile -t $(IMAGE) .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
