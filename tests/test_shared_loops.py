"""Repeated loop nests become one helper (``codegen/shared_loops.py``), and only safe ones do.

Correctness of the rewritten modules is the whole suite's business (every compiled graph goes
through it); here: which nests are shared, and that a training step's parameter updates are.
"""

from __future__ import annotations

import doctest

import numpy as np
import sympy as sp
from sympy import MatrixSymbol, OneMatrix

import symgrad as sg
from symgrad import nn
from symgrad.codegen import shared_loops
from symgrad.codegen.shared_loops import share_repeated_loops
from symgrad.runtime import SGD


def test_docstring_example():
    assert doctest.testmod(shared_loops).failed == 0


def _body(lines: str) -> str:
    return "@njit\ndef f(x, y, n):\n" + lines + "    return x\n"


def test_accumulators_and_values_read_later_stay_in_place():
    source = _body(
        "    acc = 0.0\n"
        "    for i in range(n):\n        acc += x[i]\n"
        "    for j in range(n):\n        acc += y[j]\n"
        "    for k in range(n):\n        m = x[k]\n"
        "    for q in range(n):\n        m = y[q]\n"
        "    y[0] = m\n"
    )
    (new,), helpers = share_repeated_loops([source], "@njit")
    assert helpers == [] and new == source


def test_nests_differing_in_names_and_sizes_share_one_helper():
    source = _body(
        "    for i in range(3):\n        for j in range(n):\n            x[i, j] = y[i, j] * 2.0\n"
        "    for a in range(n):\n        for b in range(n):\n            y[a, b] = x[a, b] * 2.0\n"
    )
    (new,), helpers = share_repeated_loops([source], "@njit")
    assert len(helpers) == 1
    # A constant bound goes as np.intp: Numba would specialise the helper on a bare literal.
    assert "_loop0(np.intp(3), n, x, y)" in new and "_loop0(n, n, y, x)" in new
    namespace: dict = {"njit": lambda f: f, "np": np}
    exec(helpers[0] + new, namespace)
    x, y = np.zeros((3, 3)), np.arange(9.0).reshape(3, 3)
    namespace["f"](x, y, 3)
    np.testing.assert_array_equal(y, 4 * np.arange(9.0).reshape(3, 3))


def test_a_training_step_updates_its_parameters_through_one_helper():
    n = sp.Symbol("n")
    X, Y = MatrixSymbol("X", n, 3), MatrixSymbol("Y", n, 2)
    W1, W2 = MatrixSymbol("W1", 3, 4), MatrixSymbol("W2", 4, 2)
    b1, b2 = MatrixSymbol("b1", 1, 4), MatrixSymbol("b2", 1, 2)
    ones = OneMatrix(n, 1)
    loss = nn.cross_entropy(nn.tanh(X * W1 + ones * b1) * W2 + ones * b2, Y)
    step = sg.compile_step(loss, [W1, b1, W2, b2], SGD(lr=0.1).rule, cache_enabled=False)
    calls = [ln for ln in step.source.splitlines() if ln.strip().startswith("_loop")]
    helpers = {ln.strip().split("(")[0] for ln in calls}
    assert len(calls) >= 4 and len(helpers) < len(calls)
    # Each helper is compiled once, though W1 (3x4) and W2 (4x2) have different sizes.
    rng = np.random.default_rng(0)
    values = {"X": rng.normal(size=(5, 3)), "Y": np.eye(2)[rng.integers(0, 2, 5)], "opt:lr": 0.1}
    values |= {str(p): rng.normal(size=p.shape) for p in (W1, b1, W2, b2)}
    step(values)
    for name in helpers:
        assert len(getattr(step._module, name).signatures) == 1, name
