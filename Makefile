# One virtual environment per checkout; `make demo` and `make test` build it on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,mkl]'
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo.py
	$(PY) examples/mlp_digits.py

# One pytest process for the whole suite. The random SymPy trees of symgrad.testing are built
# over real stand-ins of their symbols (SymPy's assumption queries on complex values could run
# for minutes), and tests/conftest.py keeps every test's hypothesis examples independent of which
# other tests ran before it.
test: $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/bench_scalar.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
