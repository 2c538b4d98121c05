"""codegen/hugepages.py: arrays along the vectorised axis get ``madvise(MADV_HUGEPAGE)``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from numba import njit

import symgrad as sg
from symgrad.codegen.hugepages import HUGE_BYTES, advise_hugepages

x, y, z = sp.symbols("x y z")


@njit
def _fresh(n):
    a = np.empty(n)
    advise_hugepages(a)
    for i in range(n):
        a[i] = i
    return a


def _vm_flags(address: int) -> list[str]:
    """The ``VmFlags`` of the mapping holding ``address`` (Linux ``/proc/self/smaps``)."""
    current = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(v, 16) for v in head.split("-"))
            current = lo <= address < hi
        elif head == "VmFlags:" and current:
            return line.split()[1:]
    return []


def test_the_hint_keeps_values_for_small_and_large_arrays():
    for n in (0, 1, 1000, HUGE_BYTES // 8 + 3):
        a = _fresh(n)
        assert a.shape == (n,) and np.array_equal(a, np.arange(n, dtype=np.float64))


@pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or not Path("/sys/kernel/mm/transparent_hugepage").exists(),
    reason="transparent huge pages are a Linux feature",
)
def test_large_arrays_are_marked_for_huge_pages():
    a = _fresh(4 * HUGE_BYTES // 8)
    middle = a.ctypes.data + a.nbytes // 2
    assert "hg" in _vm_flags(middle)


def test_vectorised_variants_hint_their_outputs_and_copies():
    f = sg.compile((x + y) * z, [x, y, z])
    xs, ys, zs = (np.linspace(-1, 1, 7) * k for k in (1, 2, 3))
    value, (gx, gy, gz) = f.value_and_grad(x=xs, y=ys, z=zs)
    assert np.allclose(value, (xs + ys) * zs)
    assert np.array_equal(gx, zs) and np.array_equal(gy, zs) and np.allclose(gz, xs + ys)
    # d/dx is z: still a new array, and not the same one as d/dy.
    assert not np.shares_memory(gx, zs) and not np.shares_memory(gx, gy)
    source = f._variants[f._all_inputs].source
    body = source[source.index("def value_and_grad(") :].split("\n\n\n")[0]
    assert ".copy()" not in body
    empties = [line.split("=")[0].strip() for line in body.splitlines() if "np.empty(" in line]
    assert empties and all(f"advise_hugepages({name})" in body for name in empties)
    scalar_source = f.source
    assert "advise_hugepages" not in scalar_source
