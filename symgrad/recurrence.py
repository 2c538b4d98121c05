"""Writing recurrences: sequence inputs and ``scan`` over time steps.

Examples
--------
An Elman RNN's summed squared activation, and its gradient by backpropagation through time:

>>> import numpy as np, sympy as sp, symgrad as sg
>>> T, n = sp.symbols("T n")
>>> X = sg.Sequence("X", T, n, 3)
>>> x = sp.MatrixSymbol("x_t", n, 3)          # one time step of X
>>> h = sp.MatrixSymbol("h", n, 4)            # the previous state
>>> W = sp.MatrixSymbol("W", 3, 4); U = sp.MatrixSymbol("U", 4, 4)
>>> h0 = sp.MatrixSymbol("h0", n, 4)
>>> h_new = (x * W + h * U).applyfunc(sp.tanh)
>>> rnn = sg.scan(sequences=[(x, X)], states=[(h, h_new, h0)],
...               outputs=[sp.Trace(h_new.T * h_new)])
>>> f = sg.compile(rnn.total() / T, wrt=[W, U])
>>> rng = np.random.default_rng(0)
>>> loss, (gW, gU) = f.value_and_grad(X=rng.normal(size=(5, 2, 3)), h0=np.zeros((2, 4)),
...                                   W=rng.normal(size=(3, 4)), U=rng.normal(size=(4, 4)))
>>> gW.shape, gU.shape
((3, 4), (4, 4))
"""

from __future__ import annotations

from collections.abc import Sequence as _Seq

from .ir.scan_expr import Scan, ScanFinal, ScanSum, SequenceSymbol

#: A sequence input of shape (T, rows, cols).
Sequence = SequenceSymbol


def scan(
    sequences: _Seq,
    states: _Seq,
    outputs: _Seq = (),
    reverse: bool = False,
) -> Scan:
    """A recurrence over the time axis, compiled as one loop with BPTT as its gradient.

    Parameters
    ----------
    sequences
        ``(step_symbol, Sequence)`` pairs: inside the step, ``step_symbol`` (a MatrixSymbol of
        the sequence's step shape) stands for the current time step.
    states
        ``(previous, new, initial)`` triples: ``previous`` is the MatrixSymbol standing for the
        state before the step, ``new`` its new value (a SymPy expression of the step symbols,
        the previous states and any other inputs), ``initial`` its value before the first step.
    outputs
        Per-step scalar expressions; ``scan(...).total(k)`` is the sum over time of output k.
    reverse
        Run from the last time step to the first.

    Returns
    -------
    Scan
        ``.total(k)`` (a scalar) and ``.final(j)`` (the last state j) are SymPy expressions
        to use in a loss or return as values.
    """
    return Scan(sequences, states, outputs, reverse)


__all__ = ["Scan", "ScanFinal", "ScanSum", "Sequence", "SequenceSymbol", "scan"]
