"""The gather loops' software prefetch: a hint that never changes results or faults."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from numba import njit

import symgrad as sg
from symgrad import nn
from symgrad.codegen.prefetch import prefetch_element


@njit
def _sum_rows_with_prefetch(table, ids):
    total = 0.0
    for k in range(ids.shape[0]):
        prefetch_element(table, ids[k], 0)
        prefetch_element(table, ids[k] + 10**9, 3)  # far outside: still only a hint
        for c in range(table.shape[1]):
            total += table[ids[k], c]
    return total


def test_prefetch_is_only_a_hint():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(50, 7))
    ids = rng.integers(0, 50, size=30)
    assert _sum_rows_with_prefetch(table, ids) == pytest.approx(table[ids].sum(), rel=1e-12)


def test_bag_lookups_prefetch_rows_ahead():
    E = sp.MatrixSymbol("E", 40, 6)
    ids = nn.Indices("ids", 3, 5)
    w = sp.MatrixSymbol("w", 3, 5)
    loss = nn.sum(nn.embedding_bag(E, ids, w))
    f = sg.compile(loss, wrt=[E])
    assert "prefetch_element(" in f.source
