# One virtual environment per checkout; `make demo` and `make test` build it on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo.py
	$(PY) examples/mlp_digits.py

# The tests that draw random SymPy trees run in a process of their own: SymPy's global caches,
# filled by the rest of the suite, can send its assumption system into a very long search on
# some drawn expressions (seen only in the full run).
RANDOM_TREE_TESTS := tests/test_testing_kit.py tests/test_property_scalar.py

test: $(VENV)/.installed
	$(PY) -m pytest -q $(addprefix --ignore=,$(RANDOM_TREE_TESTS))
	$(PY) -m pytest -q $(RANDOM_TREE_TESTS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/bench_scalar.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
