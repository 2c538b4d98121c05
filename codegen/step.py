"""``Step``: a compiled training step that updates parameters and optimiser state in place."""

from __future__ import annotations

import numpy as np

from ..ir.errors import InputError
from .bound import BoundStep
from .compiled import Compiled


class Step(Compiled):
    """One compiled call doing forward, backward and the optimiser update.

    Inputs are passed like :class:`Compiled`'s (by name, or one dict). The parameter arrays and
    the optimiser state arrays (named ``"<param>:<state>"``) are updated in place, so they must be
    C-contiguous, writeable arrays of the step's dtype; hyperparameters are named ``"opt:<name>"``.
    Returns the loss (and auxiliary values) computed *before* the update.
    """

    def __init__(self, module, meta: dict, **kwargs):
        super().__init__(module, meta, **kwargs)
        self._inplace = set(meta.get("inplace", ()))
        self._step = self._trusted("step")

    def _convert(self, name: str, value):
        if self._index[name] not in self._inplace:
            return Compiled._convert(self, name, value)
        if not isinstance(value, np.ndarray):
            raise InputError(
                f"{name!r} is updated in place: pass a NumPy array, not {type(value).__name__}"
            )
        flags = value.flags  # one flags object (each ``.flags`` read builds a new one)
        if value.dtype != self._np_dtype or not flags.c_contiguous or not flags.writeable:
            raise InputError(
                f"{name!r} is updated in place: it must be a writeable C-contiguous {self.dtype} "
                f"array (got dtype {value.dtype}, contiguous={flags.c_contiguous}, "
                f"writeable={flags.writeable})"
            )
        return value

    def __call__(self, *args, **kwargs):
        values, _, vec = self._prepare(args, kwargs, need_dims=False)
        if vec:
            name = self._names[vec[0]]
            raise InputError(
                f"a training step takes scalars for scalar symbols; {name!r} is an array"
            )
        return self._step(*values)

    @property
    def state_names(self) -> list[str]:
        """Names of the optimiser state inputs, in positional order."""
        return [n for n in self._names if ":" in n and not n.startswith("opt:")]

    @property
    def hyper_names(self) -> list[str]:
        return [n for n in self._names if n.startswith("opt:")]

    def bind(self, values) -> BoundStep:
        """Bind every input once for a training loop; see :class:`~symgrad.codegen.bound.BoundStep`.

        ``values`` holds every input by name (parameters, optimiser state, a first batch,
        hyperparameters), checked here like a normal call. The returned object runs a step with
        ``run(updates)``, where ``updates`` replaces some inputs (the next batch, a new learning
        rate) and only those are checked.
        """
        return BoundStep(self, values)
