"""Generated modules compile through ``codegen/pipeline.py`` and allocate only with ``np.empty``.

Both are compile-time measures (Numba's front end runs fewer passes; NumPy functions that cost
Numba ~0.4-1 s each per process stay out of generated code), so they are checked here by what
the compiled objects show, not by timing. Correctness is the whole suite's business: every
compiled graph in it goes through this pipeline.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from sympy import MatrixSymbol, OneMatrix

import symgrad as sg
from symgrad import nn
from symgrad.codegen.blas import matmul_call
from symgrad.codegen.pipeline import GeneratedCodePipeline
from symgrad.runtime import SGD

n = sp.Symbol("n")
X = MatrixSymbol("X", n, 3)
Y = MatrixSymbol("Y", n, 2)
W = MatrixSymbol("W", 3, 2)
b = MatrixSymbol("b", 1, 2)
LOSS = nn.cross_entropy(nn.tanh(X * W + OneMatrix(n, 1) * b), Y)


def _values():
    rng = np.random.default_rng(3)
    return {
        "X": rng.normal(size=(5, 3)),
        "Y": np.eye(2)[[0, 1, 1, 0, 1]],
        "W": rng.normal(size=(3, 2)),
        "b": rng.normal(size=(1, 2)),
    }


def test_compiled_functions_run_through_the_generated_code_pipeline():
    f = sg.compile(LOSS, wrt=[W, b], cache_enabled=False)
    f.value_and_grad(**_values())
    dispatcher = f._fn["value_and_grad"]
    assert dispatcher._compiler.pipeline_class is GeneratedCodePipeline
    (cres,) = dispatcher.overloads.values()
    assert list(cres.metadata["pipeline_times"]) == ["symgrad_generated"]


def test_generated_code_allocates_with_empty_only():
    step = sg.compile_step(LOSS, [W, b], SGD(lr=0.1).rule, cache_enabled=False)
    f = sg.compile(LOSS, wrt=[W, b], cache_enabled=False)
    for source in (step.source, f.source):
        assert "np.empty(" in source
        for costly in ("np.zeros(", "np.full(", "np.ones("):
            assert costly not in source
        # Matrix products write into a buffer (np.dot with out=, or gemm), never allocate one.
        assert "= np.dot(" not in source and f"{matmul_call()}(" in source
