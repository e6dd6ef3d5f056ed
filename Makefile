# Two commands:  make lab   (set up + open JupyterLab on your copy of the course)
#                make test  (set up + run every test)
# Both create or update .venv first; with nothing changed that step takes a second or two.

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
# extra pip options for the torch install, e.g. PIP_TORCH_ARGS="--index-url https://download.pytorch.org/whl/cpu"
PIP_TORCH_ARGS ?=
PYTEST_ARGS ?=

BIN   := $(VENV)/bin
STAMP := $(VENV)/.course-installed

.PHONY: lab test venv release clean-venv help

help:
	@echo "make lab    set up .venv and open JupyterLab on my-work/ (your copy of notebooks/)"
	@echo "make test   set up .venv and run every test (pytest)"
	@echo "make venv   only create/update .venv"

# (Re)install when .venv is missing or pyproject.toml changed since the last install (content hash).
venv:
	@set -e; \
	if [ ! -x "$(BIN)/python" ]; then \
	  echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv "$(VENV)"; fi; \
	want="$$(cat pyproject.toml | $(BIN)/python -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())') $(TORCH) $$(pwd)"; \
	if [ "$$(cat "$(STAMP)" 2>/dev/null)" = "$$want" ] && [ -x "$(BIN)/course" ]; then \
	  echo "$(VENV) is up to date"; \
	else \
	  echo "installing $(TORCH) (first: an unpinned torch would pull a multi-GB CUDA build)"; \
	  $(BIN)/python -m pip install -q "$(TORCH)" $(PIP_TORCH_ARGS); \
	  echo "installing the course (pip install -e .[dev])"; \
	  $(BIN)/python -m pip install -q -e ".[dev]"; \
	  echo "$$want" > "$(STAMP)"; \
	fi

lab: venv
	$(BIN)/course lab $(LAB_ARGS)

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

release: venv
	$(BIN)/course release

clean-venv:
	rm -rf $(VENV)
