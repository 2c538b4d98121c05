"""``Step.bind``: a training step bound once, then run with only the changing inputs."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad import nn
from symgrad.codegen import bound
from symgrad.ir.errors import InputError, ShapeError
from symgrad.runtime import SGD

n = sp.Symbol("n", integer=True, positive=True)
E = sp.MatrixSymbol("E", 6, 2)
X = sp.MatrixSymbol("X", n, 2)
ids = nn.Indices("ids", n, 1)
LOSS = nn.sum(sp.HadamardProduct(nn.embedding(E, ids), X)) / n


@pytest.fixture(scope="module")
def step():
    return sg.compile_step(LOSS, [E], SGD().rule)


def _values(table, rows=3):
    return {"E": table, "X": np.ones((rows, 2)), "ids": np.zeros((rows, 1), np.int64),
            "opt:lr": 0.1}  # fmt: skip


def test_bound_calls_match_checked_calls(step):
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(r, 2)), rng.integers(0, 6, (r, 1))) for r in (3, 5, 1)]
    bound_table, checked_table = np.zeros((6, 2)), np.zeros((6, 2))
    run = step.bind(_values(bound_table))
    for t, (x, i) in enumerate(batches):
        lr = 0.1 / (t + 1)
        got = run({"X": x, "ids": i, "opt:lr": lr})
        want = step({"E": checked_table, "X": x, "ids": i, "opt:lr": lr})
        assert got == want
    np.testing.assert_array_equal(bound_table, checked_table)


def test_bound_updates_are_checked(step):
    run = step.bind(_values(np.zeros((6, 2))))
    with pytest.raises(ShapeError, match=r"'X' expected shape \(n, 2\), got \(3,\)"):
        run({"X": np.ones(3)})
    with pytest.raises(ShapeError, match=r"n is 4 in this call, but input 'ids'"):
        run({"X": np.ones((4, 2))})
    with pytest.raises(InputError, match="holds id 6, but E has only 6 rows"):
        run({"ids": np.array([[6], [0], [0]])})
    with pytest.raises(ShapeError, match=r"'ids' expected shape \(n, 1\), got \(4, 1\)"):
        run({"X": np.ones((3, 2)), "ids": np.zeros((4, 1), np.int64)})
    with pytest.raises(InputError, match="updated in place"):
        run({"E": np.zeros((6, 2))})
    with pytest.raises(InputError, match="unknown input 'Y'"):
        run({"Y": 1.0})


def test_bind_needs_every_input_and_the_callers_arrays(step):
    with pytest.raises(InputError, match="missing"):
        step.bind({"E": np.zeros((6, 2))})
    with pytest.raises(InputError, match="updated in place"):
        step.bind(_values(np.zeros((6, 2), dtype=np.float32)))


def test_module_examples():
    assert doctest.testmod(bound).failed == 0
