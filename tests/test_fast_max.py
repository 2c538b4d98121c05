"""``fast_max``: the running maximum of the softmax/logsumexp shift as one vectorisable ``maxnum``.

The kernel must keep the rule of the branch it replaced (``if v > m: m = v``): a NaN operand
never wins; and the compiled row ops must still give the right answer on rows with infinities and
NaNs, in the fused form (``row_logsumexp``, along the last axis) and the composed one
(``max_shift``, along the first).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

import symgrad as sg
from symgrad import nn
from symgrad.codegen.fast_max import MAXNUM_VECTORISES, fast_max


@njit
def _max_pair(m, v):
    return fast_max(m, v)


@njit
def _running_max(row):
    m = np.float32(-np.inf)
    for k in range(row.shape[0]):
        m = fast_max(m, row[k])
    return m


def _branch_max(m: float, v: float) -> float:
    return v if v > m else m


@settings(deadline=None, max_examples=200)
@given(st.floats(allow_nan=True, width=64), st.floats(allow_nan=True, width=64))
def test_a_pair_matches_the_branch_it_replaced(m, v):
    got = _max_pair(m, v)
    if math.isnan(m) and math.isnan(v):
        assert math.isnan(got)
    elif math.isnan(m):
        # maxnum takes v, the branch (the select used where maxnum does not vectorise) keeps the
        # NaN m; the running maximum starts at -inf and is never NaN.
        assert got == v if MAXNUM_VECTORISES else math.isnan(got)
    else:
        assert got == _branch_max(m, v)  # == also accepts either sign of a zero maximum


def test_mixed_widths_give_the_wider_type():
    assert _max_pair(np.float32(1.5), 2.25) == 2.25
    assert isinstance(_max_pair(np.float32(1.5), np.float64(0.5)), float)


@settings(deadline=None, max_examples=50)
@given(st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=0, max_size=70))
def test_a_running_maximum_skips_nans(values):
    row = np.array(values, dtype=np.float32)
    expected = -math.inf
    for v in row:
        expected = _branch_max(expected, float(v))
    assert _running_max(row) == expected


@pytest.mark.skipif(not MAXNUM_VECTORISES, reason="this LLVM keeps maxnum reductions scalar")
def test_the_running_maximum_vectorises():
    _running_max(np.zeros(3, dtype=np.float32))
    ir = _running_max.inspect_llvm(_running_max.signatures[0])
    assert "llvm.maxnum.v" in ir or "vector.reduce.fmax" in ir


n = sp.Symbol("n", integer=True, positive=True)
Z = sp.MatrixSymbol("Z", n, 5)
ROWS = np.array(
    [
        [0.5, -1.0, 2.0, 0.0, 3.0],
        [-np.inf, -np.inf, -np.inf, -np.inf, -np.inf],
        [-np.inf, 1.0, -np.inf, 0.5, 2.0],
        [1.0, np.nan, 0.0, 2.0, -1.0],
        [np.inf, 1.0, 0.0, -1.0, 2.0],
    ]
)


def _reference_logsumexp(row: np.ndarray) -> float:
    if np.isnan(row).any():
        return math.nan
    m = row.max()
    m = 0.0 if np.isinf(m) else m
    with np.errstate(divide="ignore", invalid="ignore"):
        return m + float(np.log(np.exp(row - m).sum()))


@pytest.fixture(scope="module")
def logsumexps():
    fused = sg.compile(nn.logsumexp(Z, axis=1), [Z])
    composed = sg.compile(nn.logsumexp(Z.T, axis=0), [Z])
    return fused, composed


@pytest.mark.parametrize("form", ["fused", "composed"])
def test_rows_with_infinities_and_nans(logsumexps, form):
    fused, composed = logsumexps
    assert "fast_max(" in fused.source and "fast_max(" in composed.source
    with np.errstate(invalid="ignore", over="ignore"):
        got = np.asarray(fused(Z=ROWS) if form == "fused" else composed(Z=ROWS)).ravel()
    want = np.array([_reference_logsumexp(r) for r in ROWS])
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
