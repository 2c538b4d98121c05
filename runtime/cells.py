"""Recurrent cells as SymPy step formulas: Elman RNN, GRU and LSTM language-model heads.

Each builder writes one time step in the row-vector convention (a batch of ``n`` rows, ``x_t`` of
shape ``(n, d)``, weights on the right), wraps it in :func:`symgrad.scan` over an input sequence
``X`` of shape ``(T, n, d)`` and adds a per-step softmax cross-entropy against one-hot targets
``Y`` of shape ``(T, n, k)``: the mean over the batch, summed over time, optionally weighted by a
mask sequence ``M`` of shape ``(T, n, 1)`` so padded steps contribute nothing.

Formulas (``σ`` the logistic sigmoid, ``∘`` the elementwise product, ``1`` a column of ones that
broadcasts a bias row over the batch):

=======  ========================================================================================
Elman    h_t = act(h_{t−1} H + x_t W + 1 b1),  ŷ_t = softmax(h_t U + 1 b2),  act tanh or sigmoid
GRU      z = σ(x W_z + h U_z [+ 1 b_z]),  r = σ(x W_r + h U_r [+ 1 b_r]),
         h̃ = tanh(x W + r ∘ (h U) [+ 1 b]),  h_t = z ∘ h_{t−1} + (1 − z) ∘ h̃
LSTM     f, i, o = σ(x U_g + h W_g + 1 b_g) for g = f, i, o,  c̃ = tanh(x U_c + h W_c + 1 b_c),
         c_t = f ∘ c_{t−1} + i ∘ c̃,  h_t = o ∘ tanh(c_t)
=======  ========================================================================================

GRU and LSTM read out logits ``h_t V + 1 b_y``.

Examples
--------
>>> import numpy as np
>>> from symgrad.runtime import cells
>>> model = cells.elman(n_in=3, hidden=4)
>>> [p.name for p in model.params], model.state_names
(['W', 'H', 'b1', 'U', 'b2'], ['h0'])
>>> values = model.init_params(np.random.default_rng(0))
>>> values["H"].shape
(4, 4)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from sympy import HadamardProduct as Had

from .. import nn
from ..recurrence import Scan, Sequence, scan

__all__ = ["CellModel", "elman", "gru", "lstm", "CELLS"]

#: Default symbols for the sequence length and the batch size (bound at call time).
T_SYM, N_SYM = sp.symbols("T n")


@dataclass
class CellModel:
    """A recurrent language model written in SymPy, ready for :func:`symgrad.compile`.

    Attributes
    ----------
    name
        ``"elman"``, ``"gru"`` or ``"lstm"``.
    params
        Trainable ``MatrixSymbol`` s (weights and biases), in a fixed order.
    shapes
        Parameter name → integer shape.
    X, Y, M
        The input, target and (optional, else ``None``) mask sequences.
    x, y, m
        Their per-step symbols.
    states
        Previous-state symbols (``h``; ``h, c`` for the LSTM).
    initial
        Initial-state ``MatrixSymbol`` s (``h0``; ``h0, c0``), inputs of the compiled function.
    logits
        The per-step logits (an expression of the per-step symbols).
    scan
        The :class:`~symgrad.recurrence.Scan`; its output 0 is the per-step loss.
    loss
        ``scan.total(0)``: the masked per-step cross-entropy summed over time.
    finals
        ``scan.final(j)`` for every state: carry them to the next chunk (truncated BPTT).
    readout
        Logits computed from the final hidden state: the next-character distribution after the
        sequence, used for generation.
    """

    name: str
    params: list
    shapes: dict
    X: Sequence
    Y: Sequence
    M: Sequence | None
    x: sp.MatrixSymbol
    y: sp.MatrixSymbol
    m: sp.MatrixSymbol | None
    states: list
    initial: list
    logits: sp.Basic
    scan: Scan
    loss: sp.Basic = field(init=False)
    finals: list = field(init=False)
    readout: sp.Basic = field(init=False)
    _readout_fn: object = field(default=None, repr=False)

    def __post_init__(self):
        self.loss = self.scan.total(0)
        self.finals = [self.scan.final(j) for j in range(len(self.states))]
        self.readout = self._readout_fn(self.finals[0])

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def state_names(self) -> list[str]:
        return [s.name for s in self.initial]

    def init_params(self, rng: np.random.Generator, dtype="float64") -> dict[str, np.ndarray]:
        """Seeded starting values: Glorot-uniform weights, orthogonal recurrent matrices, zero
        biases except the LSTM's forget-gate bias of 1 (so early gradients flow through ``c``).
        """
        out = {}
        hidden = self.initial[0].shape[1]
        for p in self.params:
            shape = self.shapes[p.name]
            if shape[0] == 1:
                value = np.ones(shape) if p.name == "b_f" else np.zeros(shape)
            elif shape == (hidden, hidden):
                # Orthogonal: repeated multiplication by it neither explodes nor vanishes at first.
                value = np.linalg.qr(rng.normal(size=shape))[0]
            else:
                a = np.sqrt(6.0 / sum(shape))
                value = rng.uniform(-a, a, size=shape)
            out[p.name] = np.ascontiguousarray(value, dtype=dtype)
        return out

    def zero_states(self, batch: int, dtype="float64") -> dict[str, np.ndarray]:
        """Zero initial states for a batch of ``batch`` rows."""
        return {s.name: np.zeros((batch, s.shape[1]), dtype=dtype) for s in self.initial}


def _mat(name: str, rows, cols, shapes: dict) -> sp.MatrixSymbol:
    shapes[name] = (int(rows), int(cols))
    return sp.MatrixSymbol(name, rows, cols)


def _sequences(n_in, n_out, X, masked, length, batch):
    if X is None:
        X = Sequence("X", length, batch, n_in)
    length, batch, n_in = X.shape
    Y = Sequence("Y", length, batch, n_out)
    M = Sequence("M", length, batch, 1) if masked else None
    x = sp.MatrixSymbol("x_t", batch, n_in)
    y = sp.MatrixSymbol("y_t", batch, n_out)
    m = sp.MatrixSymbol("m_t", batch, 1) if masked else None
    return X, Y, M, x, y, m, int(n_in), batch


def _step_loss(logits, y, m, batch):
    """Softmax cross-entropy averaged over the batch rows, with rows weighted by the mask."""
    if m is None:
        return nn.cross_entropy(logits, y)
    # Weighting the targets by the mask zeroes both the padded rows' loss and their gradient.
    weights = m * sp.OneMatrix(1, logits.shape[1])
    return -nn.sum(Had(weights, y, nn.log_softmax(logits))) / batch


def _build(name, params, shapes, seqs, states, news, initial, logits, readout):
    X, Y, M, x, y, m, _, batch = seqs
    pairs = [(x, X), (y, Y)] + ([(m, M)] if M is not None else [])
    loop = scan(
        sequences=pairs,
        states=list(zip(states, news, initial)),
        outputs=[_step_loss(logits, y, m, batch)],
    )
    return CellModel(
        name, params, shapes, X, Y, M, x, y, m, states, initial, logits, loop, _readout_fn=readout
    )


def elman(
    n_in: int,
    hidden: int,
    n_out: int | None = None,
    activation: str = "tanh",
    *,
    mask: bool = False,
    X: Sequence | None = None,
    length=T_SYM,
    batch=N_SYM,
) -> CellModel:
    """Elman RNN: ``h_t = act(h H + x W + 1 b1)``, logits ``h_t U + 1 b2``.

    Parameters
    ----------
    n_in, hidden, n_out
        Input, hidden and output sizes (``n_out`` defaults to ``n_in``, a language model).
    activation
        ``"tanh"`` or ``"sigmoid"``.
    mask
        Add a mask sequence ``M`` of shape ``(T, n, 1)`` weighting each step's loss.
    X
        An input :class:`~symgrad.recurrence.Sequence` to scan over; default ``X`` of shape
        ``(length, batch, n_in)``.
    """
    act = {"tanh": nn.tanh, "sigmoid": nn.sigmoid}[activation]
    seqs = _sequences(n_in, n_out or n_in, X, mask, length, batch)
    _, Y, _, x, _, _, n_in, nb = seqs
    n_out = Y.shape[2]
    shapes: dict = {}
    W = _mat("W", n_in, hidden, shapes)
    H = _mat("H", hidden, hidden, shapes)
    b1 = _mat("b1", 1, hidden, shapes)
    U = _mat("U", hidden, n_out, shapes)
    b2 = _mat("b2", 1, n_out, shapes)
    ones = sp.OneMatrix(nb, 1)
    h = sp.MatrixSymbol("h", nb, hidden)
    h_new = act(h * H + x * W + ones * b1)

    def readout(hid):
        return hid * U + sp.OneMatrix(hid.shape[0], 1) * b2

    h0 = sp.MatrixSymbol("h0", nb, hidden)
    return _build(
        "elman", [W, H, b1, U, b2], shapes, seqs, [h], [h_new], [h0], readout(h_new), readout
    )


def _head(hidden, n_out, shapes):
    V = _mat("V", hidden, n_out, shapes)
    b_y = _mat("b_y", 1, n_out, shapes)

    def readout(hid):
        return hid * V + sp.OneMatrix(hid.shape[0], 1) * b_y

    return [V, b_y], readout


def gru(
    n_in: int,
    hidden: int,
    n_out: int | None = None,
    *,
    bias: bool = True,
    mask: bool = False,
    X: Sequence | None = None,
    length=T_SYM,
    batch=N_SYM,
) -> CellModel:
    """GRU: update gate ``z``, reset gate ``r`` applied to ``h U`` (biases optional).

    Parameters are as for :func:`elman`; ``bias=False`` drops ``b_z``, ``b_r`` and ``b``.
    """
    seqs = _sequences(n_in, n_out or n_in, X, mask, length, batch)
    _, Y, _, x, _, _, n_in, nb = seqs
    shapes: dict = {}
    h = sp.MatrixSymbol("h", nb, hidden)
    ones = sp.OneMatrix(nb, 1)
    params = []

    def affine(suffix):
        W = _mat(f"W{suffix}", n_in, hidden, shapes)
        U = _mat(f"U{suffix}", hidden, hidden, shapes)
        params.extend([W, U])
        return W, U

    Wz, Uz = affine("_z")
    Wr, Ur = affine("_r")
    Wh, Uh = affine("")
    if bias:
        bz, br, bh = (_mat(f"b{s}", 1, hidden, shapes) for s in ("_z", "_r", ""))
        params.extend([bz, br, bh])
        bz, br, bh = ones * bz, ones * br, ones * bh
    else:
        bz = br = bh = sp.ZeroMatrix(nb, hidden)
    z = nn.sigmoid(x * Wz + h * Uz + bz)
    r = nn.sigmoid(x * Wr + h * Ur + br)
    cand = nn.tanh(x * Wh + Had(r, h * Uh) + bh)
    h_new = Had(z, h) + Had(sp.OneMatrix(nb, hidden) - z, cand)
    head, readout = _head(hidden, Y.shape[2], shapes)
    h0 = sp.MatrixSymbol("h0", nb, hidden)
    return _build("gru", params + head, shapes, seqs, [h], [h_new], [h0], readout(h_new), readout)


def lstm(
    n_in: int,
    hidden: int,
    n_out: int | None = None,
    *,
    mask: bool = False,
    X: Sequence | None = None,
    length=T_SYM,
    batch=N_SYM,
) -> CellModel:
    """LSTM with forget, input and output gates and states ``h``, ``c``.

    Parameters are as for :func:`elman`.
    """
    seqs = _sequences(n_in, n_out or n_in, X, mask, length, batch)
    _, Y, _, x, _, _, n_in, nb = seqs
    shapes: dict = {}
    h = sp.MatrixSymbol("h", nb, hidden)
    c = sp.MatrixSymbol("c", nb, hidden)
    ones = sp.OneMatrix(nb, 1)
    params = []

    def gate(g, act):
        U = _mat(f"U_{g}", n_in, hidden, shapes)
        W = _mat(f"W_{g}", hidden, hidden, shapes)
        b = _mat(f"b_{g}", 1, hidden, shapes)
        params.extend([U, W, b])
        return act(x * U + h * W + ones * b)

    f = gate("f", nn.sigmoid)
    i = gate("i", nn.sigmoid)
    o = gate("o", nn.sigmoid)
    cand = gate("c", nn.tanh)
    c_new = Had(f, c) + Had(i, cand)
    h_new = Had(o, nn.tanh(c_new))
    head, readout = _head(hidden, Y.shape[2], shapes)
    initial = [sp.MatrixSymbol("h0", nb, hidden), sp.MatrixSymbol("c0", nb, hidden)]
    return _build(
        "lstm",
        params + head,
        shapes,
        seqs,
        [h, c],
        [h_new, c_new],
        initial,
        readout(h_new),
        readout,
    )


CELLS = {"elman": elman, "gru": gru, "lstm": lstm}
