"""Loop blocks in raised equations: a scan's per-step equations, printed and evaluated.

A :class:`Loop` stands among the equations of :mod:`symgrad.explain` where the compiled code
runs a scan. Its body equations use step-subscripted names (``h_t``, ``h_{t-1}``, ``δh_t``;
see :mod:`symgrad.ir.to_sympy_scan`); the loop defines, for the equations after it, each
state's last value (``h_T``), sums over the steps (``Σ_t ℓ_t``) and stacks of per-step values
(``δ_{1:T}``, the ``(T·n, k)`` matrix of the ``δ_t`` one above the other).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import sympy as sp

from .ir.node import Node
from .ir.to_sympy import replace_exact

__all__ = ["Loop", "block", "stack_steps"]


@dataclass(frozen=True, eq=False)
class Loop:
    """A loop over ``t`` among the equations (a scan of the compiled graph).

    Attributes
    ----------
    index, length
        The step symbol ``t`` and the number of steps ``T``.
    reverse
        Runs ``t = T … 1`` (a backward pass through time).
    sequences
        ``(step, stacked)`` pairs: inside the loop ``step`` is block ``t`` of ``stacked``.
    carries
        ``(previous, new, initial)``: ``previous`` is ``initial`` at the first step and each
        step's ``new`` afterwards; the recurrence of a state is its ``new`` equation reading
        ``previous``.
    starts
        The name of each carry before the first step (``h_0``).
    body
        The per-step :class:`~symgrad.explain.Equation` s.
    outputs
        ``(symbol, kind, step)``: ``symbol`` is the last ``step`` (``"final"``), the sum over
        the steps (``"sum"``) or the stack of the steps in order ``1 … T`` (``"stack"``).
    section
        ``"forward"`` or ``"backward"``.
    node
        The scan node of the graph.
    """

    index: sp.Symbol
    length: sp.Expr
    reverse: bool
    sequences: tuple
    carries: tuple
    starts: tuple
    body: tuple
    outputs: tuple
    section: str = "forward"
    node: Node | None = None

    @property
    def name(self) -> str:
        return f"for {self.index}"

    @property
    def symbols(self) -> list[sp.Basic]:
        """The per-step names of the body, then the names the loop defines for what follows."""
        return [e.symbol for e in self.body] + [s for s, _, _ in self.outputs]

    def rename(self, mapping: Mapping) -> Loop:
        """The loop with outer names replaced (as :func:`~symgrad.ir.to_sympy.replace_exact`)."""
        if not mapping:
            return self

        def sub(e):
            return replace_exact(e, mapping)

        return replace(
            self,
            sequences=tuple((s, sub(q)) for s, q in self.sequences),
            carries=tuple((p, n, sub(i)) for p, n, i in self.carries),
            body=tuple(replace(e, expr=sub(e.expr)) for e in self.body),
        )

    def header(self, printer: Callable[[sp.Basic], str]) -> str:
        """``for t = 1 … T, from h_0 = h0:`` with ``printer`` for the symbols."""
        lo, hi = (self.length, 1) if self.reverse else (1, self.length)
        text = f"for {printer(self.index)} = {printer(sp.sympify(lo))} … {printer(sp.sympify(hi))}"
        starts = [
            f"{printer(s)} = {printer(init)}" for s, (_, _, init) in zip(self.starts, self.carries)
        ]
        return text + (", from " + ", ".join(starts) if starts else "") + ":"

    def latex_header(self, printer: Callable[[sp.Basic], str]) -> str:
        lo, hi = (self.length, 1) if self.reverse else (1, self.length)
        text = f"\\textbf{{for }} {printer(self.index)} = {printer(sp.sympify(lo))}, \\ldots, "
        text += printer(sp.sympify(hi))
        starts = [f"{printer(s)} = {printer(i)}" for s, (_, _, i) in zip(self.starts, self.carries)]
        return text + (" \\textbf{ from } " + ",\\ ".join(starts) if starts else "") + ":"

    # -- numbers -------------------------------------------------------------------------------
    def evaluate(self, env: dict, evaluate: Callable[[sp.Basic, Mapping], Any]) -> None:
        """Run the loop on NumPy values: bind the outputs' symbols in ``env``.

        ``evaluate(expr, env)`` gives the value of one expression; ``env`` must hold the
        sequences, the initial values and the dimension symbols (the number of steps is
        ``length`` evaluated on them).
        """
        steps = int(sp.sympify(self.length).subs({d: v for d, v in env.items() if _is_dim(d)}))
        local = dict(env)
        for prev, _, init in self.carries:
            local[prev] = evaluate(init, env)
        sums: dict[int, Any] = {}
        stacks: dict[int, list] = {k: [None] * steps for k, o in enumerate(self.outputs)}
        order = range(steps - 1, -1, -1) if self.reverse else range(steps)
        for t in order:
            for step, stacked in self.sequences:
                if isinstance(step, (sp.Symbol, sp.MatrixSymbol)):
                    local[step] = block(evaluate(stacked, local), t, steps, step)
            for e in self.body:
                local[e.symbol] = evaluate(e.expr, local)
            for k, (_, kind, step) in enumerate(self.outputs):
                value = evaluate(step, local)
                if kind == "sum":
                    sums[k] = value if k not in sums else sums[k] + value
                elif kind == "stack":
                    stacks[k][t] = value
            new = [evaluate(n, local) for _, n, _ in self.carries]
            for (prev, _, _), value in zip(self.carries, new):
                local[prev] = value
        finals = iter(local[prev] for prev, _, _ in self.carries)
        for k, (sym, kind, step) in enumerate(self.outputs):
            if kind == "final":
                env[sym] = next(finals)
            elif kind == "sum":
                env[sym] = sums.get(k, 0.0)
            else:
                env[sym] = stack_steps(stacks[k], step)


def _is_dim(s) -> bool:
    return isinstance(s, sp.Symbol) and not isinstance(s, sp.Dummy)


def block(stacked, t: int, steps: int, step: sp.Basic):
    """Block ``t`` (from 0) of a stacked value: rows ``t·r … t·r + r - 1`` for steps of ``r``
    rows, entry ``t`` of the ``1 x T`` row that stacks scalar steps.

    Examples
    --------
    >>> import numpy as np, sympy as sp
    >>> block(np.arange(6.0).reshape(6, 1), 1, 3, sp.MatrixSymbol("x_t", 2, 1)).ravel().tolist()
    [2.0, 3.0]
    """
    stacked = np.asarray(stacked, dtype=np.float64)
    if not isinstance(step, sp.MatrixSymbol):
        return stacked.reshape(-1)[t]
    rows = stacked.shape[0] // steps
    return stacked[t * rows : (t + 1) * rows]


def stack_steps(values: list, step: sp.Basic):
    """The per-step ``values`` (in step order) stacked as :func:`block` reads them back."""
    if not getattr(step, "is_Matrix", False):
        return np.asarray(values, dtype=np.float64).reshape(1, -1)
    return np.vstack([np.asarray(v, dtype=np.float64) for v in values])
