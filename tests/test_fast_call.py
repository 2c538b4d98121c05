"""The all-float fast path of ``value_and_grad`` (codegen/fast_call.py).

Every call shape must give what the general method gives: positional, keyword, mixed, the
one-dict form, ints, arrays, ``seed=``; and missing, unknown or surplus inputs keep their named
errors. Input names that cannot be parameters of the generated wrapper (a keyword, ``seed``, a
name the inlined body already uses) fall back to the closure and still answer correctly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.codegen import fast_call

x, y, z = sp.symbols("x y z")
EXPR = sp.sin(x) * sp.exp(-(y**2)) + sp.log(1 + z**2)


@pytest.fixture(scope="module")
def f():
    return sg.compile(EXPR, [x, y, z])


def reference(xv, yv, zv):
    value = math.sin(xv) * math.exp(-(yv**2)) + math.log(1 + zv**2)
    grads = (
        math.cos(xv) * math.exp(-(yv**2)),
        -2 * yv * math.sin(xv) * math.exp(-(yv**2)),
        2 * zv / (1 + zv**2),
    )
    return value, grads


def test_the_wrapper_is_generated_with_the_twin_inlined(f):
    assert f.value_and_grad.__code__.co_varnames[:3] == ("x", "y", "z")
    assert "py_value_and_grad" not in f.value_and_grad.__code__.co_names
    assert f.value_and_grad.__doc__ == sg.Compiled.value_and_grad.__doc__


finite = st.floats(-5, 5, allow_nan=False)


@settings(max_examples=30, deadline=None)
@given(finite, finite, finite)
def test_every_call_shape_gives_the_same_answer(f, xv, yv, zv):
    value, grads = reference(xv, yv, zv)
    calls = [
        f.value_and_grad(x=xv, y=yv, z=zv),
        f.value_and_grad(z=zv, x=xv, y=yv),
        f.value_and_grad(xv, yv, zv),
        f.value_and_grad(xv, z=zv, y=yv),
        f.value_and_grad({x: xv, y: yv, z: zv}),
        f.value_and_grad({"x": xv, "y": yv, "z": zv}),
        f.value_and_grad(x=np.float64(xv), y=yv, z=zv),  # not a Python float: general path
    ]
    for got_value, got_grads in calls:
        assert got_value == pytest.approx(value, rel=1e-12, abs=1e-14)
        assert got_grads == pytest.approx(grads, rel=1e-12, abs=1e-14)


def test_ints_arrays_and_seed_take_the_general_path(f):
    value, grads = f.value_and_grad(x=1, y=0, z=2)
    assert value == pytest.approx(reference(1.0, 0.0, 2.0)[0])
    xs = np.linspace(-1, 1, 5)
    values, (gx, gy, gz) = f.value_and_grad(x=xs, y=0.5, z=1.0)
    assert values.shape == (5,) and gx.shape == (5,)
    for k, xv in enumerate(xs):
        assert values[k] == pytest.approx(reference(xv, 0.5, 1.0)[0])
    _, seeded = f.value_and_grad(x=0.5, y=0.3, z=-1.2, seed=3.0)
    assert seeded == pytest.approx(tuple(3 * g for g in reference(0.5, 0.3, -1.2)[1]))


def test_bad_calls_keep_their_named_errors(f):
    with pytest.raises(sg.InputError, match="missing input 'z'"):
        f.value_and_grad(x=1.0, y=2.0)
    with pytest.raises(sg.InputError, match="missing input 'y'"):
        f.value_and_grad(1.0, z=2.0)
    with pytest.raises(sg.InputError, match="unknown input 'w'"):
        f.value_and_grad(x=1.0, y=2.0, z=3.0, w=4.0)
    with pytest.raises(sg.InputError, match="expected 3 positional inputs"):
        f.value_and_grad(1.0, 2.0, 3.0, 4.0)
    with pytest.raises(sg.InputError, match="'x'"):
        f.value_and_grad(x="a", y=2.0, z=3.0)


def test_overflow_in_the_twin_falls_back_to_numba():
    a, b = sp.symbols("a b")
    g = sg.compile(sp.exp(a) * b, [a, b])
    value, (ga, gb) = g.value_and_grad(a=1000.0, b=1.0)
    assert math.isinf(value) and math.isinf(ga) and math.isinf(gb)


@pytest.mark.parametrize("names", [("seed", "b"), ("lambda_", "math"), ("type", "b")])
def test_names_the_wrapper_cannot_use_still_work(names):
    """``seed`` and ``type`` are the wrapper's own names; ``math`` is used by the inlined body."""
    a, b = sp.symbols(names)
    g = sg.compile(sp.exp(a) * b, [a, b])
    got = g.value_and_grad({a: 0.5, b: 2.0})
    assert got[0] == pytest.approx(2 * math.exp(0.5))
    assert got[1] == pytest.approx((2 * math.exp(0.5), math.exp(0.5)))
    if "seed" not in names:
        by_name = g.value_and_grad(**{names[0]: 0.5, names[1]: 2.0})
        assert by_name[0] == pytest.approx(got[0]) and by_name[1] == pytest.approx(got[1])


def test_plain_names_rule():
    assert fast_call._plain_names(["x", "w0", "alpha"])
    for bad in (["x", "seed"], ["lambda"], ["_x"], ["x y"], ["float"], ["kwargs"]):
        assert not fast_call._plain_names(bad)


def test_a_name_used_inside_the_body_is_not_inlined():
    def twin(arg0, arg1):
        return (math.exp(arg0) * arg1, (arg1, arg0))

    assert fast_call._inlined_body(twin, ["a", "b"]) is not None
    assert fast_call._inlined_body(twin, ["math", "b"]) is None
