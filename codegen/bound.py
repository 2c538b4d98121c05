"""``BoundStep``: a compiled training step bound to its arguments, for tight training loops.

:class:`~symgrad.codegen.step.Step` resolves names, converts and checks every input on every
call, which costs more than a small model's whole step (word2vec with a handful of pairs, a
small MLP). A bound step checks everything once, keeps the positional argument list, and per
call only swaps in what changed (the batch, the learning rate), checking just those: their
dtype, layout and shape against the dimensions fixed at bind time. Parameter and state arrays are
held by reference, so the in-place updates land in the caller's arrays.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from ..ir.errors import InputError, ShapeError
from .shape_checks import shape_str


class BoundStep:
    """The positional arguments of a compiled step and its Numba function.

    Built by :meth:`Step.bind <symgrad.codegen.step.Step.bind>`.

    Attributes
    ----------
    args
        The positional argument list. Fast loops may assign ``args[slots[name]]`` directly
        (unchecked) and call :attr:`fn` with ``*args``.
    slots
        Input name → position.
    fn
        The raw Numba step function.
    """

    def __init__(self, step, values: Mapping[str, object]):
        values = {k if isinstance(k, str) else k.name: v for k, v in values.items()}
        names = step.input_names
        missing = [n for n in names if n not in values]
        if missing:
            raise InputError(f"bind needs every input of the step; missing {missing}")
        unknown = [n for n in values if n not in step._index]
        if unknown:
            raise InputError(f"unknown input(s) {unknown}; the step takes {names}")
        converted, dims, _ = step._prepare((values,), {})
        for k in step._inplace:
            # In-place targets must be the caller's own arrays, not converted copies.
            if converted[k] is not values[names[k]]:
                raise InputError(f"{names[k]!r} is updated in place: pass the array itself")
        self.args = list(converted)
        self.slots = {n: k for k, n in enumerate(names)}
        self.fn = step._step
        self._step = step
        self._names = names
        self._cast = step._scalar
        # Per-call checks work on plain ints: symbols become positions in self._sizes.
        symbols = sorted({d for sh in step._shapes for d in _symbols(sh)}, key=str)
        position = {s: j for j, s in enumerate(symbols)}
        self._symbols = symbols
        self._sizes = [dims[s][0] if s in dims else -1 for s in symbols]
        self._shapes = [
            tuple(d if isinstance(d, int) else position.get(d, None) for d in sh)
            for sh in step._shapes
        ]
        self._symbolic = [tuple(not isinstance(d, int) for d in sh) for sh in step._shapes]
        self._users = {j: [k for k, sh in enumerate(step._shapes) if s in sh]
                       for s, j in position.items()}  # fmt: skip
        self._index_slots = {step._index[name] for name in step._index_inputs}
        self._limits = {
            k: [(_limit(rows, dims), label) for rows, label in bounds]
            for k, _, bounds in step._index_bounds
        }

    def warm_up(self) -> float:
        """Make Numba compile the step by running it once on copies; returns the seconds."""
        t0 = time.perf_counter()
        self.fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in self.args])
        return time.perf_counter() - t0

    def __call__(self, updates: Mapping[str, object] | None = None):
        """Run one step, after replacing the inputs in ``updates`` (by name); returns the loss.

        Examples
        --------
        >>> import numpy as np, sympy as sp, symgrad as sg
        >>> from symgrad.runtime import SGD
        >>> n = sp.Symbol("n")
        >>> W, X = sp.MatrixSymbol("W", 2, 1), sp.MatrixSymbol("X", n, 2)
        >>> opt = SGD(lr=0.1)
        >>> step = sg.compile_step(sp.Trace((X * W).T * X * W), [W], opt.rule)
        >>> w = np.ones((2, 1))
        >>> run = step.bind({"W": w, "X": np.ones((3, 2)), **opt.hyper_values(step=0)})
        >>> run({"X": np.array([[1.0, 0.0]]), "opt:lr": 0.25})
        1.0
        >>> w.ravel().tolist()
        [0.5, 1.0]
        """
        if updates:
            self._swap(updates)
        return self.fn(*self.args)

    def _swap(self, updates: Mapping[str, object]) -> None:
        step = self._step
        sizes = list(self._sizes)
        seen: set[int] = set()  # symbols already sized by an input of this call
        pending = {}
        for name, value in updates.items():
            k = self.slots.get(name)
            if k is None:
                raise InputError(f"unknown input {name!r}; the step takes {self._names}")
            if k in step._inplace:
                raise InputError(f"{name!r} is updated in place; it is bound and cannot change")
            shape = self._shapes[k]
            if not shape:
                # Scalars (hyperparameters): the step's float type, no shape to check.
                kind = type(value)
                pending[k] = (
                    self._cast(value)
                    if kind is float or kind is int
                    else (step._convert(name, value))
                )
                continue
            value = self._converted(k, name, value)
            got = value.shape if type(value) is np.ndarray else np.shape(value)
            if len(got) != len(shape):
                self._shape_error(k, got)
            for want, symbolic, size in zip(shape, self._symbolic[k], got):
                if not symbolic:
                    if want != size:
                        self._shape_error(k, got)
                elif want is not None:
                    if want not in seen:
                        seen.add(want)
                        sizes[want] = size
                    elif sizes[want] != size:
                        self._shape_error(k, got)
            pending[k] = value
        for j, size in enumerate(sizes):
            if size == self._sizes[j]:
                continue
            for k in self._users[j]:
                if k not in pending:
                    raise ShapeError(
                        f"{self._symbols[j]} is {size} in this call, but input "
                        f"{self._names[k]!r} (not replaced) has {self._symbols[j]} = "
                        f"{self._sizes[j]}"
                    )
        for k, value in pending.items():
            if k in self._limits and value.size:
                top = int(value.max())
                for limit, label in self._limits[k]:
                    if limit is not None and top >= limit:
                        raise InputError(
                            f"index input {self._names[k]!r} holds id {top}, but {label} has "
                            f"only {limit} rows; ids must be below {limit} (-1 marks padding)"
                        )
            self.args[k] = value
        self._sizes = sizes

    def _converted(self, k: int, name: str, value):
        step = self._step
        if type(value) is np.ndarray and value.flags.c_contiguous:
            wanted = np.int64 if k in self._index_slots else step._np_dtype
            if value.dtype == wanted:
                return value
        return step._convert(name, value)

    def _shape_error(self, k: int, got) -> None:
        want = self._step._shapes[k]
        raise ShapeError(
            f"input {self._names[k]!r} expected shape {shape_str(want)}, got {shape_str(got)}"
        )


def _limit(rows, dims) -> int | None:
    """The row count of a table from the dimensions bound at bind time (tables are parameters:
    their shapes do not change)."""
    if isinstance(rows, int):
        return rows
    try:
        return int(rows.xreplace({s: b[0] for s, b in dims.items()}))
    except TypeError:
        return None


def _symbols(shape) -> set:
    return {d for d in shape if not isinstance(d, int) and d.is_Symbol}
