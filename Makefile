# Two commands:  make lab   (set up + open JupyterLab on your copy of the course)
#                make test  (set up + run every test)
# Both create or update .venv first; with nothing changed that step takes a second or two.

PYTHON ?= python3
VENV   ?= .venv
# torch's version is also pinned in constraints.txt: another TORCH needs CONSTRAINTS= (or a new lock) with it
TORCH  ?= torch==2.13.0
# extra pip options for the torch install, e.g. PIP_TORCH_ARGS="--index-url https://download.pytorch.org/whl/cpu"
PIP_TORCH_ARGS ?=
PYTEST_ARGS ?=
# the lock file: exact versions of everything pip installs (`make constraints` refreshes it; see README).
# CONSTRAINTS= (empty) resolves from pyproject.toml's ranges alone, which is how a refresh starts.
CONSTRAINTS ?= constraints.txt

BIN   := $(VENV)/bin
STAMP := $(VENV)/.course-installed
PIP_C := $(if $(CONSTRAINTS),-c "$(CONSTRAINTS)")

.PHONY: lab test venv release clean-venv constraints help

help:
	@echo "make lab    set up .venv and open JupyterLab on my-work/ (your copy of notebooks/)"
	@echo "make test   set up .venv and run every test (pytest)"
	@echo "make venv   only create/update .venv"
	@echo "make constraints   rewrite constraints.txt from what .venv has installed (see README)"

# (Re)install when .venv is missing or pyproject.toml or the constraints file changed since the last install
# (content hash of both), with the versions pinned by $(CONSTRAINTS).
venv:
	@set -e; \
	if [ ! -x "$(BIN)/python" ]; then \
	  echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv "$(VENV)"; fi; \
	want="$$(cat pyproject.toml $(CONSTRAINTS) | $(BIN)/python -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())') $(TORCH) c=$(CONSTRAINTS) $$(pwd)"; \
	if [ "$$(cat "$(STAMP)" 2>/dev/null)" = "$$want" ] && [ -x "$(BIN)/course" ]; then \
	  echo "$(VENV) is up to date"; \
	else \
	  echo "installing $(TORCH) (first: an unpinned torch would pull a multi-GB CUDA build)"; \
	  $(BIN)/python -m pip install -q $(PIP_C) "$(TORCH)" $(PIP_TORCH_ARGS); \
	  echo "installing the course (pip install $(PIP_C) -e .[dev])"; \
	  $(BIN)/python -m pip install -q $(PIP_C) -e ".[dev]"; \
	  echo "$$want" > "$(STAMP)"; \
	fi

# The lock file from what $(VENV) has installed: everything but the course itself (editable), with torch's
# local build label dropped (torch==2.13.0 admits the CPU build, 2.13.0+cpu, and the default one).
constraints:
	@set -e; \
	{ echo "# constraints.txt: the exact versions of every package that the tests passed with (a pip lock file),"; \
	  echo "# used by the Makefile: pip install -c constraints.txt ... (environment.yml points pip at it too)."; \
	  echo "# Made by pip freeze of a .venv on Python $$($(BIN)/python -c 'import platform; print(platform.python_version())'), without the course itself; torch's local label"; \
	  echo "# (+cpu) dropped so that the CPU and the CUDA builds both match. Refresh (README, For contributors):"; \
	  echo "#   make clean-venv && make test CONSTRAINTS= && make constraints"; \
	  $(BIN)/python -m pip freeze --exclude-editable | sed -E 's/^(torch==[^+]+)\+.*/\1/'; \
	} > constraints.txt.tmp; \
	mv constraints.txt.tmp constraints.txt; \
	echo "wrote constraints.txt ($$(grep -vc '^#' constraints.txt) packages)"

lab: venv
	$(BIN)/course lab $(LAB_ARGS)

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

release: venv
	$(BIN)/course release

clean-venv:
	rm -rf $(VENV)
