"""The published worked examples and the public contract of DESIGN.md."""

import math

import numpy as np
import pytest
import sympy as sp

import symgrad as sg

x, y, z = sp.symbols("x y z")
w0, x0, w1, x1, w2 = sp.symbols("w0 x0 w1 x1 w2")


@pytest.fixture(scope="module")
def f_xyz():
    return sg.compile((x + y) * z, wrt=[x, y, z])


@pytest.fixture(scope="module")
def neuron():
    return sg.compile(1 / (1 + sp.exp(-(w0 * x0 + w1 * x1 + w2))), wrt=[w0, x0, w1, x1, w2])


def test_sum_times_product(f_xyz):
    assert f_xyz(x=-2.0, y=5.0, z=-4.0) == -12.0
    assert f_xyz.value_and_grad(x=-2.0, y=5.0, z=-4.0) == (-12.0, (-4.0, -4.0, 3.0))
    assert f_xyz.grad(x=-2.0, y=5.0, z=-4.0) == (-4.0, -4.0, 3.0)
    assert "@njit" in f_xyz.source


def test_inputs_as_dict_keyed_by_symbol_or_name(f_xyz):
    assert f_xyz({x: -2.0, y: 5.0, z: -4.0}) == -12.0
    assert f_xyz({"x": -2, "y": 5, "z": -4}) == -12.0  # integers are cast


def test_sigmoid_neuron(neuron):
    value, grads = neuron.value_and_grad(w0=2.0, x0=-1.0, w1=-3.0, x1=-2.0, w2=-3.0)
    assert value == pytest.approx(1 / (1 + math.exp(-1.0)))
    dw0, dx0, dw1, dx1, dw2 = grads
    assert dx0 == pytest.approx(0.393, abs=1e-3)
    assert dw0 == pytest.approx(-0.197, abs=1e-3)
    assert dx1 == pytest.approx(-0.590, abs=1e-3)
    assert dw1 == pytest.approx(-0.393, abs=1e-3)
    assert dw2 == pytest.approx(0.197, abs=1e-3)


def test_scalar_symbols_broadcast_over_arrays(f_xyz):
    xs = np.linspace(-1.0, 1.0, 7)
    value = f_xyz(x=xs, y=2.0, z=3.0)
    np.testing.assert_allclose(value, (xs + 2.0) * 3.0)
    gx, gy, gz = f_xyz.grad(x=xs, y=2.0, z=3.0)
    np.testing.assert_allclose(gx, np.full(7, 3.0))  # elementwise
    assert gy == pytest.approx(21.0)  # gradient of the sum
    assert gz == pytest.approx(float(np.sum(xs + 2.0)))


def test_seed_sets_the_output_cotangent(f_xyz):
    xs = np.array([1.0, 2.0])
    seed = np.array([10.0, -1.0])
    gx, gy, gz = f_xyz.grad(x=xs, y=1.0, z=2.0, seed=seed)
    np.testing.assert_allclose(gx, 2.0 * seed)
    assert gz == pytest.approx(float(np.sum((xs + 1.0) * seed)))
    assert f_xyz.grad(x=1.0, y=1.0, z=2.0, seed=3.0) == (6.0, 6.0, 6.0)


def test_missing_and_unknown_inputs_are_named(f_xyz):
    with pytest.raises(sg.InputError, match="'z'"):
        f_xyz(x=1.0, y=2.0)
    with pytest.raises(sg.InputError, match="'w'"):
        f_xyz(x=1.0, y=2.0, z=3.0, w=4.0)
    with pytest.raises(sg.InputError, match="not numeric"):
        f_xyz(x="a", y=2.0, z=3.0)


def test_forward_mode_matches_reverse(neuron):
    inputs = dict(w0=2.0, x0=-1.0, w1=-3.0, x1=-2.0, w2=-3.0)
    grads = neuron.grad(**inputs)
    for sym, g in zip(neuron.wrt, grads):
        value, tangent = neuron.jvp({sym: 1.0}, **inputs)
        assert tangent == pytest.approx(g)
