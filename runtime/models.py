"""Model builders: a network as SymPy math, plus what the trainer needs to feed it.

A model (the protocol :class:`~symgrad.runtime.trainer.Trainer` relies on) has

- ``loss``: the scalar SymPy loss, averaged over the batch dimension ``n``;
- ``outputs``: the matrix expression reported per example (here the logits);
- ``params``: the trainable ``MatrixSymbol`` s, and ``shapes`` (name → shape);
- ``data_names``: the names of the data inputs, in the order :meth:`prepare` returns arrays;
- ``init_params(seed, dtype)`` → :class:`~symgrad.runtime.params.ParamStore`;
- ``prepare(X, y, dtype)`` → ``(arrays, labels)``: checked, converted, one-hot encoded data;
- ``n_correct(outputs, labels)``: correctly classified examples in a batch (``None`` for
  regression), which gives the accuracy metric.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp

from ..ir.errors import InputError, ShapeError
from .errors import DataError
from .params import InitSpec, ParamStore

__all__ = ["MLP", "DataError", "ACTIVATIONS", "OUTPUTS"]


def _nn():
    # symgrad.nn registers its functions with the compiler on import; import it only when a
    # model is built so that `import symgrad.runtime` stays light.
    from symgrad import nn

    return nn


def _activation(name_or_fn) -> Callable:
    """A function from a matrix expression to the elementwise activation of it."""
    if isinstance(name_or_fn, str):
        nn = _nn()
        table = {
            "tanh": nn.tanh,
            "relu": nn.relu,
            "sigmoid": nn.sigmoid,
            "softplus": nn.softplus,
            "leaky_relu": nn.leaky_relu,
            "hard_tanh": nn.hard_tanh,
            "identity": lambda M: M,
        }
        if name_or_fn not in table:
            raise InputError(f"unknown activation {name_or_fn!r}; use one of {sorted(table)}")
        return table[name_or_fn]
    if isinstance(name_or_fn, sp.Lambda):
        return lambda M: M.applyfunc(name_or_fn)
    if isinstance(name_or_fn, sp.FunctionClass):
        return lambda M: _nn().broadcast_apply(name_or_fn, M)
    if callable(name_or_fn):
        return name_or_fn
    raise InputError(f"activation must be a name, a SymPy function or a callable: {name_or_fn!r}")


ACTIVATIONS = ("tanh", "relu", "sigmoid", "softplus", "leaky_relu", "hard_tanh", "identity")
#: output name → (loss, task)
OUTPUTS = ("softmax", "sigmoid", "linear")
_RELU_LIKE = ("relu", "leaky_relu")


class MLP:
    """A multilayer perceptron ``X → act(X W₁ + b₁) → … → W_L h + b_L`` with its loss.

    Examples are rows: ``X`` is ``(n, sizes[0])`` with a symbolic batch size ``n``, weights are
    ``(fan_in, fan_out)`` and a bias row ``b`` is broadcast over the batch as
    ``OneMatrix(n, 1) * b``.

    Parameters
    ----------
    sizes
        Layer widths, input first, e.g. ``[64, 32, 10]``.
    activation
        Hidden activation: a name in :data:`ACTIVATIONS`, a SymPy function class (``sp.atan``)
        or ``Lambda`` applied elementwise, or a callable on matrix expressions.
    output
        ``"softmax"`` (multi-class; cross-entropy from logits; labels are class indices),
        ``"sigmoid"`` (binary/multi-label; binary cross-entropy from logits; targets in [0, 1])
        or ``"linear"`` (regression; mean squared error).
    l2
        Weight decay λ: adds ``λ/2 · Σ‖W‖²`` over the weights (not the biases).
    batch
        The batch-size symbol.

    Attributes
    ----------
    X, Y
        The data ``MatrixSymbol`` s (inputs and targets; ``Y`` is one-hot for softmax).
    params
        ``[W1, b1, W2, b2, ...]``.
    shapes
        Parameter name → shape.
    logits, outputs
        The last layer's pre-activation (``outputs`` is the same expression).
    probabilities
        ``softmax(logits)``, ``sigmoid(logits)`` or the logits for ``"linear"``.
    loss
        The scalar training loss (mean over the batch, plus the L2 term).

    Examples
    --------
    >>> from symgrad.runtime import MLP
    >>> net = MLP([2, 3, 2], activation="tanh", output="softmax", l2=1e-3)
    >>> [str(p) for p in net.params], net.shapes["W1"]
    (['W1', 'b1', 'W2', 'b2'], (2, 3))
    >>> net.logits
    tanh(X*W1 + 1*b1)*W2 + 1*b2
    >>> arrays, labels = net.prepare([[0.0, 1.0]], [1])
    >>> arrays[1].tolist()
    [[0.0, 1.0]]
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Callable = "tanh",
        output: str = "softmax",
        *,
        l2: float = 0.0,
        batch: sp.Symbol | None = None,
    ):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise InputError(f"sizes needs at least an input and an output width >= 1: {sizes}")
        if output not in OUTPUTS:
            raise InputError(f"unknown output {output!r}; use one of {OUTPUTS}")
        if output == "softmax" and sizes[-1] < 2:
            raise InputError("a softmax output needs at least 2 classes")
        nn = _nn()
        self.sizes, self.output, self.l2 = sizes, output, float(l2)
        self.activation = activation
        self.n = batch if batch is not None else sp.Symbol("n")
        n = self.n
        act = _activation(activation)
        self.X = sp.MatrixSymbol("X", n, sizes[0])
        self.Y = sp.MatrixSymbol("Y", n, sizes[-1])
        self.weights, self.biases, self.params = [], [], []
        h = self.X
        for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            W = sp.MatrixSymbol(f"W{k}", fan_in, fan_out)
            b = sp.MatrixSymbol(f"b{k}", 1, fan_out)
            self.weights.append(W)
            self.biases.append(b)
            self.params += [W, b]
            z = h * W + sp.OneMatrix(n, 1) * b
            h = z if k == len(sizes) - 1 else act(z)
        self.logits = self.outputs = h
        if output == "softmax":
            data_loss = nn.cross_entropy(h, self.Y)
            self.probabilities = nn.softmax(h)
        elif output == "sigmoid":
            data_loss = nn.binary_cross_entropy(h, self.Y)
            self.probabilities = nn.sigmoid(h)
        else:
            data_loss = nn.mse(h, self.Y)
            self.probabilities = h
        self.data_loss = data_loss
        self.loss = data_loss
        if self.l2:
            self.loss = data_loss + sp.Float(self.l2) / 2 * nn.l2(*self.weights)
        self.shapes = {str(p): tuple(int(d) for d in p.shape) for p in self.params}
        self.data_names = (self.X.name, self.Y.name)

    def __repr__(self) -> str:
        return (
            f"MLP({self.sizes}, activation={self.activation!r}, output={self.output!r}, "
            f"l2={self.l2:g})"
        )

    def config(self) -> dict:
        """JSON-able description (stored in checkpoints to check a resume uses the same net)."""
        act = self.activation if isinstance(self.activation, str) else repr(self.activation)
        return {
            "type": "MLP",
            "sizes": self.sizes,
            "activation": act,
            "output": self.output,
            "l2": self.l2,
        }

    # -- parameters ----------------------------------------------------------------------------
    def init_params(
        self, seed: int | None = 0, dtype: str = "float64", init: InitSpec | None = None
    ) -> ParamStore:
        """Seeded parameters: weights by ``init`` (default He normal for ReLU-like activations,
        Xavier/Glorot uniform otherwise), biases zero."""
        if init is None:
            init = "he_normal" if self.activation in _RELU_LIKE else "xavier_uniform"
        store = ParamStore(dtype, seed=seed)
        for W, b in zip(self.weights, self.biases):
            store.add(W.name, self.shapes[W.name], init)
            store.add(b.name, self.shapes[b.name], "zeros")
        return store

    # -- data ----------------------------------------------------------------------------------
    def prepare(self, X, y, dtype: str = "float64") -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """Check and convert training data; raises before anything is compiled.

        Returns ``((X, Y), labels)``: C-contiguous arrays of ``dtype`` (``Y`` one-hot for a
        softmax output) and the labels as given (class indices for softmax), used for metrics.

        Raises
        ------
        ShapeError
            ``X`` is not 2-D with ``sizes[0]`` columns, or ``X`` and ``y`` differ in length.
        DataError
            A class label outside ``[0, k)`` or not an integer, targets outside [0, 1] for a
            sigmoid output, or a non-finite value.
        """
        dt = np.dtype(dtype)
        Xa = np.asarray(X)
        if Xa.dtype.kind not in "biuf":
            raise DataError(f"X must be numeric, got dtype {Xa.dtype}")
        if Xa.ndim != 2:
            raise ShapeError(f"X must be a 2-D array (examples × features), got shape {Xa.shape}")
        if Xa.shape[1] != self.sizes[0]:
            raise ShapeError(
                f"X has {Xa.shape[1]} features (columns) but the network's input layer takes "
                f"{self.sizes[0]}"
            )
        ya = np.asarray(y)
        if ya.ndim == 0 or ya.shape[0] != Xa.shape[0]:
            got = "a scalar" if ya.ndim == 0 else f"{ya.shape[0]} labels"
            raise ShapeError(f"X has {Xa.shape[0]} examples (rows) but y has {got}")
        if Xa.shape[0] == 0:
            raise DataError("no training examples (X has 0 rows)")
        if ya.dtype.kind not in "biuf":
            raise DataError(f"y must be numeric, got dtype {ya.dtype}")
        _check_finite("X", Xa)
        _check_finite("y", ya)
        k = self.sizes[-1]
        if self.output == "softmax":
            Y = self._one_hot(ya, k, dt)
        else:
            Y = ya.reshape(-1, 1) if ya.ndim == 1 else ya
            if Y.ndim != 2 or Y.shape[1] != k:
                expected = f"({Xa.shape[0]}, {k})" + (f" or ({Xa.shape[0]},)" if k == 1 else "")
                raise ShapeError(
                    f"y has shape {ya.shape} but the network has {k} output(s): expected {expected}"
                )
            if self.output == "sigmoid" and ((Y < 0) | (Y > 1)).any():
                row = int(np.argwhere((Y < 0) | (Y > 1))[0, 0])
                raise DataError(
                    f"sigmoid targets must lie in [0, 1]; y[{row}] = {ya[row].tolist()}"
                )
        X_out = np.ascontiguousarray(Xa, dtype=dt)
        Y_out = np.ascontiguousarray(Y, dtype=dt)
        return (X_out, Y_out), ya

    def _one_hot(self, y: np.ndarray, k: int, dt: np.dtype) -> np.ndarray:
        if y.ndim == 2 and y.shape[1] == k:
            return y  # already one-hot / probability rows
        if y.ndim != 1:
            raise ShapeError(
                f"softmax labels must be class indices of shape (n,) or one-hot rows (n, {k}); "
                f"got shape {y.shape}"
            )
        bad_int = y != np.round(y)
        if bad_int.any():
            row = int(np.flatnonzero(bad_int)[0])
            raise DataError(f"class labels must be integers; y[{row}] = {y[row].item()}")
        bad = (y < 0) | (y >= k)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise DataError(
                f"label {y[rows[0]].item()} at y[{rows[0]}] is out of range: the network has {k} "
                f"classes, so labels must be integers in [0, {k - 1}] "
                f"({rows.size} label{'s' if rows.size > 1 else ''} out of range)"
            )
        Y = np.zeros((y.shape[0], k), dtype=dt)
        Y[np.arange(y.shape[0]), y.astype(np.int64)] = 1
        return Y

    def n_correct(self, outputs: np.ndarray, labels: np.ndarray) -> int | None:
        """Correct predictions in a batch from its logits (``None`` for regression)."""
        if self.output == "softmax":
            predicted = outputs.argmax(axis=1)
            truth = labels if labels.ndim == 1 else labels.argmax(axis=1)
            return int(np.count_nonzero(predicted == truth))
        if self.output == "sigmoid":
            truth = labels.reshape(outputs.shape) >= 0.5
            return int(np.count_nonzero(np.all((outputs > 0) == truth, axis=1)))
        return None

    def predict_labels(self, outputs: np.ndarray) -> np.ndarray:
        """Class predictions from logits (the logits themselves for regression)."""
        if self.output == "softmax":
            return outputs.argmax(axis=1)
        if self.output == "sigmoid":
            out = (outputs > 0).astype(np.int64)
            return out[:, 0] if out.shape[1] == 1 else out
        return outputs


def _check_finite(name: str, a: np.ndarray) -> None:
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise DataError(
            f"{name} contains a non-finite value at {name}{list(where)}: {a[where].item()}"
        )
