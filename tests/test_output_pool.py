"""codegen/output_pool.py: long points calls reuse output memory the caller has dropped, never
memory the caller still holds."""

from __future__ import annotations

import doctest
import threading

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.codegen import output_pool
from symgrad.codegen.output_pool import MIN_BYTES, OutputPool

x, y, z = sp.symbols("x y z")
#: Long enough to be pooled, short enough to be quick.
N = 2 * MIN_BYTES // 8


@pytest.fixture(scope="module")
def f():
    return sg.compile((x + y) * sp.exp(z), [x, y, z])


def _inputs(seed: int, n: int = N):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((3, n))


def _expected(xs, ys, zs):
    e = np.exp(zs)
    return (xs + ys) * e, (e, e, (xs + ys) * e)


def _check(result, xs, ys, zs):
    value, grads = result
    want_value, want_grads = _expected(xs, ys, zs)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    for g, w in zip(grads, want_grads):
        np.testing.assert_allclose(g, w, rtol=1e-12)


def test_the_doctest_runs():
    assert doctest.testmod(output_pool).failed == 0


def test_a_dropped_result_is_reused_and_results_are_right(f):
    xs, ys, zs = _inputs(0)
    first = f.value_and_grad(x=xs, y=ys, z=zs)
    _check(first, xs, ys, zs)
    address = first[0].ctypes.data
    del first
    xs2, ys2, zs2 = _inputs(1)
    second = f.value_and_grad(x=xs2, y=ys2, z=zs2)
    assert second[0].ctypes.data == address  # the same memory, not a fresh allocation
    pool = f._variants[f._all_inputs]._pools["value_and_grad"]
    value = second[0] if second[0].base is None else second[0].base  # maybe a reshaped view
    assert any(a is value for outputs in pool._free for a in outputs)
    _check(second, xs2, ys2, zs2)
    # Every returned array is still its own (d/dx and d/dy are one graph node).
    arrays = [second[0], *second[1]]
    for k, a in enumerate(arrays):
        assert not any(np.shares_memory(a, b) for b in arrays[k + 1 :] + [xs2, ys2, zs2])


@pytest.mark.parametrize("hold", ["value", "gradient", "view", "list"])
def test_a_held_result_is_never_written_again(f, hold):
    xs, ys, zs = _inputs(2)
    value, grads = f.value_and_grad(x=xs, y=ys, z=zs)
    if hold == "value":
        held = value
    elif hold == "gradient":
        held = grads[2]
    elif hold == "view":
        held = grads[0][::3]
    else:
        held = [grads[1]]
    snapshot = np.array(held, copy=True)
    del value, grads
    for seed in range(3, 8):
        new = _inputs(seed)
        _check(f.value_and_grad(x=new[0], y=new[1], z=new[2]), *new)
    np.testing.assert_array_equal(np.asarray(held), snapshot)


def test_a_result_passed_back_as_input(f):
    xs, ys, zs = _inputs(3)
    value, _ = f.value_and_grad(x=xs, y=ys, z=zs)
    again = f.value_and_grad(x=value, y=ys, z=zs)
    _check(again, value, ys, zs)


def test_rebinding_one_name_in_a_loop_reuses_two_sets(f):
    xs, ys, zs = _inputs(4)
    addresses = set()
    for _ in range(6):
        r = f.value_and_grad(x=xs, y=ys, z=zs)
        addresses.add(r[0].ctypes.data)
    _check(r, xs, ys, zs)
    assert len(addresses) <= 2


def test_value_calls_and_broadcast_calls_are_pooled_too(f):
    xs, ys, zs = _inputs(5)
    np.testing.assert_allclose(f(x=xs, y=ys, z=zs), _expected(xs, ys, zs)[0], rtol=1e-12)
    # A 2-D grid and a broadcast scalar: the general vectorised path.
    grid = xs.reshape(-1, 2)
    value, (gx, gy, gz) = f.value_and_grad(x=grid, y=0.5, z=zs.reshape(-1, 2))
    want_value, (wx, _, wz) = _expected(grid, 0.5, zs.reshape(-1, 2))
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    np.testing.assert_allclose(gx, wx, rtol=1e-12)
    np.testing.assert_allclose(gz, wz, rtol=1e-12)
    np.testing.assert_allclose(gy, wx.sum(), rtol=1e-10)  # a scalar input's gradient is summed


def test_threads_each_get_their_own_outputs(f):
    errors = []

    def work(seed):
        try:
            for k in range(8):
                xs, ys, zs = _inputs(seed * 100 + k)
                r = f.value_and_grad(x=xs, y=ys, z=zs)
                _check(r, xs, ys, zs)
        except AssertionError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_short_calls_allocate_and_long_calls_use_into():
    calls = []

    def fn(a):
        calls.append("fn")
        return a * 2.0

    def into(a, out0):
        calls.append("into")
        np.multiply(a, 2.0, out=out0)
        return out0

    pool = OutputPool({"f": fn, "f_into": into}, "f", 1, np.dtype("float32"))
    short = MIN_BYTES // 4 - 1
    pool(short, np.ones(short, np.float32))
    long_ = MIN_BYTES // 4
    out = pool(long_, np.ones(long_, np.float32))
    assert calls == ["fn", "into"]
    assert out.dtype == np.float32 and out.shape == (long_,)
    # A call of another length does not reuse the set.
    address = out.ctypes.data
    del out
    assert pool(long_ + 1, np.ones(long_ + 1, np.float32)).ctypes.data != address


@pytest.mark.parametrize(
    "expr",
    [x + 0 * y, 2 * x + y, sp.exp(x) + 0 * y],
    ids=["value-is-an-input", "constant-gradients", "value-is-a-gradient"],
)
def test_into_functions_match_the_allocating_ones(expr):
    f = sg.compile(expr, [x, y])
    xs, ys = _inputs(9)[:2]
    for _ in range(2):  # the second call reuses the first call's outputs
        value, grads = f.value_and_grad(x=xs, y=ys)
    variant = f._variants[f._all_inputs]
    want_value, want_grads = variant._fn["value_and_grad"](xs, ys)
    np.testing.assert_array_equal(value, want_value)
    for g, w in zip(grads, want_grads):
        np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(f(x=xs, y=ys), variant._fn["value"](xs, ys))
    arrays = [value, *grads]
    for k, a in enumerate(arrays):
        assert not any(np.shares_memory(a, b) for b in arrays[k + 1 :] + [xs, ys])
