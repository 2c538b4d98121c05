"""A compiled training step bound to its arguments: the positional list is built once.

:class:`symgrad.codegen.step.Step` checks every input on every call (names, dtypes, shapes,
contiguity), which costs more than a small network's whole step. The trainer passes the same
parameter and state arrays every step and batches cut from arrays it already converted, so it
checks once here and then calls the Numba function directly, swapping list entries in place.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from ..ir.errors import InputError

__all__ = ["BoundStep"]


class BoundStep:
    """The positional arguments of a compiled step and its raw Numba function.

    Parameters
    ----------
    step
        A :class:`~symgrad.codegen.step.Step` from :func:`symgrad.compile_step`.
    values
        Every input by name: parameter and state arrays (kept by reference, so the in-place
        updates land in them), a first batch, and the hyperparameters.
    scalar
        ``float`` or ``numpy.float32``: the type hyperparameters must have so Numba reuses the
        machine code compiled for the checked call.

    Attributes
    ----------
    args
        The positional argument list; assign ``args[slots[name]]`` to change an input.
    slots
        Input name → position.
    """

    def __init__(self, step, values: Mapping[str, object], scalar=float):
        names = [str(s) for s in step.inputs]
        missing = [n for n in names if n not in values]
        if missing:
            raise InputError(f"the compiled step needs inputs {missing} that were not given")
        # The wrapper's full checks, once; afterwards the same kinds of values go to Numba as is.
        step._prepare((dict(values),), {})
        self.args = [scalar(values[n]) if n.startswith("opt:") else values[n] for n in names]
        self.slots = {n: k for k, n in enumerate(names)}
        self.fn = getattr(step, "_step", None) or step
        self.scalar = scalar

    def warm_up(self) -> float:
        """Make Numba compile the step by running it once on copies; returns the seconds."""
        t0 = time.perf_counter()
        self.fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in self.args])
        return time.perf_counter() - t0

    def __call__(self):
        return self.fn(*self.args)
