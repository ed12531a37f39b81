# Two entry points, both self-contained on a fresh machine:
#   make demo   set up .venv, fuse the shipped example model, verify it, print where outputs went
#   make test   set up .venv with the test extras and run the whole test suite
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test setup bench clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e ".[test,bench]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/autofuse --input examples/tiny_llama.onnx --opt-level 3 --verify --verify-kernels -o out/tiny_llama

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 -q

bench: $(STAMP)
	$(VENV)/bin/python bench/bench_pass.py --corpus

clean:
	rm -rf $(VENV) out .cache .pytest_cache
