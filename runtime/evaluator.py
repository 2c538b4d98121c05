"""Loss, accuracy and outputs of a model on a whole data set, with one compiled function.

The function is ``symgrad.compile([loss, outputs], wrt=params)``: its value gives the loss and
the per-example outputs, its ``value_and_grad`` serves full-batch training with
``scipy.optimize``. Large data sets go through it in chunks of rows, which bounds the memory of
the intermediates.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["Evaluator"]

#: Rows per compiled call.
CHUNK = 8192


class Evaluator:
    """Evaluate ``model`` with the parameter arrays ``params`` (read at every call).

    Parameters
    ----------
    model
        A model as described in :mod:`symgrad.runtime.models`.
    params
        Parameter arrays by name (e.g. a :class:`~symgrad.runtime.params.ParamStore`).
    dtype
        ``"float64"`` or ``"float32"``.
    """

    def __init__(self, model, params: Mapping[str, np.ndarray], dtype: str = "float64"):
        self.model, self.params, self.dtype = model, params, dtype
        self._compiled = None

    @property
    def compiled(self):
        """The compiled ``[loss, outputs]`` function (built on first use)."""
        if self._compiled is None:
            from symgrad import compile as sg_compile

            exprs = [self.model.loss, self.model.outputs]
            self._compiled = sg_compile(exprs, wrt=self.model.params, dtype=self.dtype)
        return self._compiled

    def _chunks(self, arrays):
        f = self.compiled
        for start in range(0, arrays[0].shape[0], CHUNK):
            part = [a[start : start + CHUNK] for a in arrays]
            loss, out = f({**self.params, **dict(zip(self.model.data_names, part))})
            yield start, part[0].shape[0], loss, out

    def metrics(self, arrays, labels) -> dict[str, float]:
        """``{"loss": mean loss, "accuracy": ...}`` on prepared data (see ``model.prepare``);
        no accuracy for regression."""
        total, correct = 0.0, 0
        for start, rows, loss, out in self._chunks(arrays):
            total += float(loss) * rows
            c = self.model.n_correct(out, labels[start : start + rows])
            correct = None if c is None else correct + c
        n = arrays[0].shape[0]
        result = {"loss": total / n}
        if correct is not None:
            result["accuracy"] = correct / n
        return result

    def outputs(self, arrays) -> np.ndarray:
        """The model's per-example outputs (logits for an MLP) on prepared data."""
        return np.concatenate([out for _, _, _, out in self._chunks(arrays)])
