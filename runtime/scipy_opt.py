"""Full-batch training with ``scipy.optimize.minimize`` (L-BFGS-B, CG, BFGS ...).

SciPy optimises a flat float64 vector; the compiled ``value_and_grad`` wants named arrays. One
float64 buffer holds the vector and every parameter is a reshaped view of a slice of it, so each
evaluation is one copy into the buffer, one compiled call and one concatenation of gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from ..codegen.compiled import Compiled
from ..ir.errors import InputError
from .params import ParamStore

if TYPE_CHECKING:  # pragma: no cover
    from scipy.optimize import OptimizeResult

__all__ = ["minimize"]

METHODS = ("L-BFGS-B", "CG", "BFGS", "TNC", "SLSQP", "Newton-CG")


def minimize(
    f: Compiled,
    params: ParamStore,
    data: Mapping[str, np.ndarray],
    method: str = "L-BFGS-B",
    *,
    maxiter: int = 500,
    tol: float | None = None,
    options: dict | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> OptimizeResult:
    """Minimise the compiled loss ``f`` over ``params`` on the full data set.

    Parameters
    ----------
    f
        ``symgrad.compile(loss, wrt=params)`` (auxiliary outputs are allowed; the first output
        is minimised).
    params
        The starting point; the result is written back into these arrays.
    data
        The other inputs of ``f`` by name (e.g. ``{"X": X, "Y": Y}``).
    method
        A gradient-based ``scipy.optimize.minimize`` method.
    maxiter, tol, options
        Passed to ``scipy.optimize.minimize``.
    callback
        Called as ``callback(iteration, loss)`` after each iteration.

    Returns
    -------
    scipy.optimize.OptimizeResult
        With ``history``: the loss after each iteration.

    Examples
    --------
    >>> import numpy as np, sympy as sp, symgrad as sg
    >>> from symgrad.runtime import ParamStore, minimize
    >>> w = sp.MatrixSymbol("w", 1, 2)
    >>> f = sg.compile(sp.Trace((w - sp.Matrix([[1, 2]])) * (w - sp.Matrix([[1, 2]])).T), wrt=[w])
    >>> store = ParamStore(); _ = store.add("w", (1, 2), "zeros")
    >>> result = minimize(f, store, {})
    >>> np.round(store["w"], 6).tolist(), result.success
    ([[1.0, 2.0]], True)
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS} (gradient-based), got {method!r}")
    names = [str(w) for w in f.wrt]
    missing = [n for n in names if n not in params]
    if missing:
        raise InputError(f"the compiled function differentiates {missing}, not in the store")
    sizes = [params[n].size for n in names]
    buffer = np.concatenate([params[n].ravel() for n in names]).astype(np.float64)
    views, offset = {}, 0
    for n, size in zip(names, sizes):
        views[n] = buffer[offset : offset + size].reshape(params[n].shape)
        offset += size
    inputs = {**data, **views}
    history: list[float] = []
    last = {"value": np.nan}

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        buffer[:] = x
        value, grads = f.value_and_grad(inputs)
        if isinstance(value, tuple):
            value = value[0]
        last["value"] = float(value)
        return float(value), np.concatenate([np.ravel(g) for g in grads]).astype(np.float64)

    def on_iteration(*_args) -> None:
        history.append(last["value"])
        if callback is not None:
            callback(len(history), last["value"])

    opts = {"maxiter": int(maxiter), **(options or {})}
    import scipy.optimize  # ~0.5 s to import: only when training full-batch

    result = scipy.optimize.minimize(
        fun, buffer.copy(), jac=True, method=method, tol=tol, options=opts, callback=on_iteration
    )
    buffer[:] = result.x
    for n in names:
        params.set(n, views[n])
    result.history = history
    return result
