# `make demo` and `make test` each create (or reuse) .venv and install the project into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mltk-installed
TEST_WORKERS ?= 2

.PHONY: setup demo test test-all bench-startup clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# A plain torch requirement can resolve to a multi-GB CUDA build: pin the CPU build first
	@# where no torch is installed yet (set TORCH_SPEC to choose another).
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$${TORCH_SPEC:-torch==2.13.0}"
	$(BIN)/python -m pip install -q -e ".[all,dev]"
	@# pip compiles installed packages to bytecode but not an editable tree; without this every
	@# start-up compiles mltk again where PYTHONDONTWRITEBYTECODE is set.
	@$(BIN)/python -m compileall -q mltk plugins
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/mltk tensor complete

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# two worker processes (pytest-xdist), one thread each; a test file stays on one worker
	PATH="$(CURDIR)/$(BIN):$$PATH" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q \
		-n $(TEST_WORKERS) --dist loadfile

test-all: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "slow or not slow"

bench-startup: setup
	$(BIN)/python benchmarks/startup/bench_startup.py

clean:
	rm -rf $(VENV) runs
