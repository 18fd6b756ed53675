# tlt — one entry point for every routine job. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-peers
TOOLS := $(wildcard tools/tlt-*)
PROTOS := $(wildcard libtlt/src/libtlt/spec/protos/*.proto)
# --durations: the slowest tests in every log, so that make test's growth shows where it comes from.
PYTEST_ARGS ?= --durations=25

.PHONY: install test demo bench lint proto clean

install: $(STAMP)

# Re-install when a package definition or the pins change; otherwise this is a no-op.
$(STAMP): constraints.txt libtlt/pyproject.toml $(addsuffix /pyproject.toml,$(TOOLS))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip==26.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e './libtlt[train,export]' \
		$(addprefix -e ./,$(TOOLS)) \
		tensorflow-cpu keras tf2onnx onnx onnxruntime scipy h5py \
		pytest hypothesis pytest-benchmark ruff mypy grpcio-tools types-protobuf types-PyYAML types-tqdm \
		albumentations opencv-python-headless matplotlib pycocotools scikit-learn imgviz
	# TensorRT's Python bindings wheels are only *read* (tests/runtime/test_tensorrt_api_surface.py checks every
	# TensorRT name the runtime uses against the 10.13 and 11.4 APIs); they are never installed.
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
		--python-version 3.11 -c constraints.txt -d $(VENV)/trt-bindings tensorrt-cu12-bindings tensorrt-cu13-bindings
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) tests $(wildcard tools/*/tests)

demo: install
	$(BIN)/python -m libtlt.demo demo_out

# The peers of bench/ (bench/peers.txt), on top of the pinned install; `make test` never needs them.
$(BENCH_STAMP): $(STAMP) bench/peers.txt
	$(BIN)/python -m pip install --quiet --no-deps -r bench/peers.txt
	touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP)
	$(BIN)/python -m pytest -q -s bench --benchmark-only --benchmark-columns=min,mean,max,rounds

lint: install
	$(BIN)/ruff check libtlt tools tests bench
	$(BIN)/mypy libtlt/src/libtlt

# Regenerate the committed *_pb2.py files from the .proto schemas (tests fail when they are stale).
proto: install
	$(BIN)/python -m libtlt.spec.compile

clean:
	rm -rf $(VENV) demo_out .pytest_cache .mypy_cache .ruff_cache
