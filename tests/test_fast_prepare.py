"""The generated fast path of ``Compiled._prepare`` (``codegen/fast_prepare.py``).

It must agree with the general path whenever it answers, and hand everything unusual to it (so
that conversions and named errors stay the general path's). Each case below runs the public call
twice: with the fast path, and with it switched off, and compares results and errors.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad import nn
from symgrad.codegen import fast_prepare
from symgrad.runtime import SGD

n = sp.Symbol("n", integer=True, positive=True)
E = sp.MatrixSymbol("E", 6, 2)
X = sp.MatrixSymbol("X", n, 2)
W = sp.MatrixSymbol("W", 2, 3)
c = sp.Symbol("c")
ids = nn.Indices("ids", n, 1)
LOSS = nn.sum(sp.HadamardProduct(nn.embedding(E, ids), X)) / n


@pytest.fixture(scope="module")
def step():
    return sg.compile_step(LOSS, [E], SGD().rule)


@pytest.fixture(scope="module")
def layer():
    """Matrix inputs with a symbolic and fixed dimensions, and a scalar."""
    return sg.compile(nn.sum((X * W).applyfunc(sp.tanh)) * c, [W, c])


def _general_only(f):
    """The same compiled object's answer with the fast path switched off."""

    class Off:
        def __enter__(self):
            self.saved, f._fast_prepare = f._fast_prepare, None

        def __exit__(self, *exc):
            f._fast_prepare = self.saved

    return Off()


def _outcome(call):
    try:
        return "ok", call()
    except Exception as exc:  # noqa: BLE001 - the error itself is compared
        return type(exc).__name__, str(exc)


def _same(a, b) -> None:
    assert a[0] == b[0], (a, b)
    if a[0] != "ok":
        assert a[1] == b[1]
        return
    flat_a, flat_b = _flatten(a[1]), _flatten(b[1])
    assert len(flat_a) == len(flat_b)
    for x, y in zip(flat_a, flat_b):
        np.testing.assert_array_equal(x, y)


def _flatten(out) -> list:
    if isinstance(out, tuple):
        return [v for o in out for v in _flatten(o)]
    return [np.asarray(out)]


def _both(f, values_factory):
    """The outcome of ``f.value_and_grad(values)`` with and without the fast path."""
    fast = _outcome(lambda: f.value_and_grad(values_factory()))
    with _general_only(f):
        general = _outcome(lambda: f.value_and_grad(values_factory()))
    return fast, general


@settings(deadline=None, max_examples=30)
@given(rows=st.integers(1, 6), seed=st.integers(0, 2**16), scale=st.floats(-2, 2))
def test_valid_calls_take_the_fast_path_and_agree(layer, rows, seed, scale):
    rng = np.random.default_rng(seed)
    values = {"X": rng.normal(size=(rows, 2)), "W": rng.normal(size=(2, 3)), "c": scale}
    given_list = layer._collect((values,), {})
    layer.value_and_grad(values)  # builds the fast path on the first call
    fast = layer._fast_prepare(given_list)
    assert fast is not None and all(a is b for a, b in zip(fast[:2], given_list[:2]))
    _same(*_both(layer, lambda: values))


BAD_LAYER_INPUTS = {
    "an int scalar": {"c": 2},
    "a NumPy scalar": {"c": np.float64(2.0)},
    "an array for the scalar (vectorised call)": {"c": np.array([1.0, 2.0])},
    "float32 array": {"W": np.ones((2, 3), np.float32)},
    "Fortran-ordered array": {"W": np.asfortranarray(np.ones((2, 3)))},
    "a nested list": {"W": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]},
    "an int array": {"X": np.ones((4, 2), np.int64)},
    "a wrong fixed width": {"W": np.ones((2, 4))},
    "a wrong rank": {"X": np.ones(4)},
    "a string": {"c": "two"},
}


@pytest.mark.parametrize("case", sorted(BAD_LAYER_INPUTS))
def test_unusual_inputs_get_the_general_answer(layer, case):
    base = {"X": np.ones((4, 2)), "W": np.full((2, 3), 0.5), "c": 1.5}

    def values():
        return {**base, **BAD_LAYER_INPUTS[case]}

    layer.value_and_grad(base)  # builds the fast path
    assert layer._fast_prepare(layer._collect((values(),), {})) is None
    _same(*_both(layer, values))


def _variants_of(shape: tuple[int, ...]) -> st.SearchStrategy:
    """A value for an input of this shape: usually right, often subtly not."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=shape)
    return st.sampled_from(
        [
            base,
            base.astype(np.float32),
            np.asfortranarray(base),
            base.round().astype(np.int64),
            base.tolist(),
            base[..., :-1] if len(shape) == 2 and shape[1] > 1 else base[:0],
            base.reshape(-1),
            np.repeat(base, 2, axis=0)[::2],  # right shape, not contiguous
        ]
    )


@settings(deadline=None, max_examples=60)
@given(
    x=_variants_of((4, 2)),
    w=_variants_of((2, 3)),
    c=st.sampled_from([1.5, 2, np.float64(0.5), np.float32(0.25), np.ones(4), "c", None]),
)
def test_any_mix_of_inputs_gets_the_general_answer(layer, x, w, c):
    layer.value_and_grad({"X": np.ones((4, 2)), "W": np.ones((2, 3)), "c": 1.0})
    values = {"X": x, "W": w, "c": c}

    def plain(a, shape) -> bool:
        return (
            type(a) is np.ndarray
            and a.dtype == np.float64
            and a.shape == shape
            and a.flags.c_contiguous
        )

    # The fast path answers exactly the calls it can pass on unconverted; the rest go on.
    expected = plain(x, (4, 2)) and plain(w, (2, 3)) and type(c) is float
    taken = layer._fast_prepare(layer._collect((values,), {})) is not None
    assert taken == expected
    _same(*_both(layer, lambda: values))


def _step_values(**changes):
    base = {"E": np.zeros((6, 2)), "X": np.ones((3, 2)), "ids": np.array([[0], [5], [2]]),
            "opt:lr": 0.1}  # fmt: skip
    return {**base, **changes}


BAD_STEP_INPUTS = {
    "an id past the table": {"ids": np.array([[0], [6], [2]])},
    "float ids": {"ids": np.array([[0.0], [1.0], [2.0]])},
    "int32 ids": {"ids": np.array([[0], [1], [2]], np.int32)},
    "ids of another batch size": {"ids": np.zeros((4, 1), np.int64)},
    "a read-only table": {"E": np.zeros((6, 2))},
    "a float32 table": {"E": np.zeros((6, 2), np.float32)},
    "an int learning rate": {"opt:lr": 1},
}


@pytest.mark.parametrize("case", sorted(BAD_STEP_INPUTS))
def test_unusual_step_inputs_get_the_general_answer(step, case):
    changes = dict(BAD_STEP_INPUTS[case])
    if case == "a read-only table":
        changes["E"].flags.writeable = False
    step(_step_values())  # builds the fast path
    assert step._fast_prepare(step._collect((_step_values(**changes),), {})) is None
    tables = []
    outcomes = []
    for fast_on in (True, False):
        values = _step_values(**{k: (v.copy() if isinstance(v, np.ndarray) else v)
                                 for k, v in changes.items()})  # fmt: skip
        if case == "a read-only table":
            values["E"].flags.writeable = False
        if fast_on:
            outcomes.append(_outcome(lambda values=values: step(values)))
        else:
            with _general_only(step):
                outcomes.append(_outcome(lambda values=values: step(values)))
        tables.append(values["E"])
    _same(*outcomes)
    np.testing.assert_array_equal(tables[0], tables[1])


def test_valid_step_calls_agree_and_update_in_place(step):
    rng = np.random.default_rng(1)
    tables = [rng.normal(size=(6, 2)) for _ in range(2)]
    tables[1][:] = tables[0]
    for k in range(3):
        x, i = rng.normal(size=(k + 2, 2)), rng.integers(-1, 6, (k + 2, 1))  # -1: padding
        got = step({"E": tables[0], "X": x, "ids": i, "opt:lr": 0.05})
        with _general_only(step):
            want = step({"E": tables[1], "X": x, "ids": i, "opt:lr": 0.05})
        assert got == want
        np.testing.assert_array_equal(tables[0], tables[1])


def test_dims_and_bound_steps_use_the_same_sizes(step):
    values = _step_values(X=np.ones((5, 2)), ids=np.zeros((5, 1), np.int64))
    fast_dims = step._prepare((values,), {})[1]
    with _general_only(step):
        general_dims = step._prepare((values,), {})[1]
    assert fast_dims == general_dims
    assert {str(s): v for s, v in fast_dims.items()} == {"n": (5, "X")}


def test_expression_dimensions_have_no_fast_path():
    m = sp.Symbol("m", integer=True, positive=True)
    A, B = sp.MatrixSymbol("A", m, 2), sp.MatrixSymbol("B", m + 1, 2)
    f = sg.compile(nn.sum(A) + nn.sum(B), [A])
    f({"A": np.ones((2, 2)), "B": np.ones((3, 2))})
    assert f._fast_prepare is None


def test_docstring_example():
    assert doctest.testmod(fast_prepare).failed == 0
