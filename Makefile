# Two entry points, both self-contained on a fresh machine:
#   make demo   set up .venv from the lock, fuse the shipped example model, verify it, print where outputs went
#   make test   set up .venv from the lock and run the whole test suite (what .ci/run runs)
# and, for keeping the environment honest:
#   make test-latest   the whole suite in .venv-latest, against the newest releases (not the lock)
#   make lock          re-resolve the [test,bench] extras and rewrite requirements-lock.txt
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
LATEST := .venv-latest
LOCK := requirements-lock.txt
PIP_FLAGS := --quiet --disable-pip-version-check
# A new lock or pyproject.toml makes a new environment from scratch: nothing left over from the last.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)

.PHONY: demo test setup bench clean test-latest lock

$(STAMP): pyproject.toml $(LOCK)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -r $(LOCK)
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps --no-build-isolation -e .
	$(VENV)/bin/pip check $(PIP_FLAGS)
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/autofuse --input examples/tiny_llama.onnx --opt-level 3 --verify --verify-kernels -o out/tiny_llama

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 -q

bench: $(STAMP)
	$(VENV)/bin/python bench/bench_pass.py --corpus

# The newest releases of everything but torch (pinned by pyproject.toml): prints what differs from
# the lock, then runs the whole suite. Its test caches are keyed by package versions.
test-latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install $(PIP_FLAGS) --upgrade setuptools
	$(LATEST)/bin/pip install $(PIP_FLAGS) --upgrade -e ".[test,bench]"
	$(LATEST)/bin/pip freeze --all --exclude-editable | grep -v '^pip==' | sed 's/+cpu$$//' > $(LATEST)/versions.txt
	@echo "newest releases that differ from $(LOCK):"
	@diff <(grep -v '^#' $(LOCK) | sort -f) <(sort -f $(LATEST)/versions.txt) | grep '^[<>]' || echo "  none"
	$(LATEST)/bin/python -m pytest -n 2 -q

lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install $(PIP_FLAGS) --upgrade setuptools
	.venv-lock/bin/pip install $(PIP_FLAGS) ".[test,bench]"
	{ sed -n '/^#/p' $(LOCK) | sed "s/^# Made on [0-9-]*/# Made on $$(date +%F)/"; \
	  .venv-lock/bin/pip freeze --all --exclude-editable | grep -iv -e '^autofuse' -e '^pip==' | sed 's/+cpu$$//'; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .venv-lock
	@echo "wrote $(LOCK); run make test, then commit it"

clean:
	rm -rf $(VENV) $(LATEST) out .cache .pytest_cache
