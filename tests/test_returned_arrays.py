"""Every array a compiled function returns is its own.

No gradient shares memory with an input or with another returned array, so writing into one
(clipping gradients in place, an update that reuses a gradient's buffer) never changes another:
two inputs whose gradients are the same graph node (d/dA = d/dB for (A + B)ᵀ·exp(X)) get two
arrays, as an input returned as a gradient (d(x·z)/dx = z) gets a copy.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

import symgrad as sg

x, y, z = sp.symbols("x y z")
n = sp.Symbol("n")
A, B, X = (sp.MatrixSymbol(name, n, 2) for name in "ABX")


def _assert_own_memory(returned, inputs):
    for k, a in enumerate(returned):
        assert not any(np.shares_memory(a, b) for b in inputs)
        assert not any(np.shares_memory(a, b) for b in returned[k + 1 :])


def test_points_gradients_of_one_node_are_separate_arrays():
    f = sg.compile((x + y) * sp.exp(z), [x, y, z])
    rng = np.random.default_rng(0)
    xs, ys, zs = rng.standard_normal((3, 11))
    value, (gx, gy, gz) = f.value_and_grad(x=xs, y=ys, z=zs)
    np.testing.assert_allclose(gx, np.exp(zs))
    np.testing.assert_allclose(gy, np.exp(zs))
    np.testing.assert_allclose(gz, (xs + ys) * np.exp(zs))
    _assert_own_memory([value, gx, gy, gz], [xs, ys, zs])
    gx *= 2.0
    np.testing.assert_allclose(gy, np.exp(zs))


def test_a_value_and_its_gradient_are_separate_arrays():
    f = sg.compile(sp.exp(x), [x])
    xs = np.linspace(-1.0, 1.0, 9)
    value, (gx,) = f.value_and_grad(x=xs)
    np.testing.assert_allclose(value, np.exp(xs))
    np.testing.assert_allclose(gx, np.exp(xs))
    _assert_own_memory([value, gx], [xs])
    value -= 1.0
    np.testing.assert_allclose(gx, np.exp(xs))


def test_matrix_gradients_of_one_node_are_separate_arrays():
    f = sg.compile(sp.Trace((A + B).T * X.applyfunc(sp.exp)), [A, B, X])
    rng = np.random.default_rng(1)
    a, b, xv = rng.standard_normal((3, 4, 2))
    _, grads = f.value_and_grad(A=a, B=b, X=xv)
    np.testing.assert_allclose(grads[0], np.exp(xv))
    np.testing.assert_allclose(grads[1], np.exp(xv))
    _assert_own_memory(list(grads), [a, b, xv])
    # The Numba backward function keeps the same promise.
    value, tape = f.forward(a, b, xv)
    back = f.backward(a, b, xv, *tape, 1.0)
    np.testing.assert_allclose(back[0], grads[0])
    _assert_own_memory(list(back), [a, b, xv])
