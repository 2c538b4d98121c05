"""The result of :func:`symgrad.explain.gradient_equations`: named assignments, printable and
evaluable.

:class:`Equations` is an ordered list of :class:`Equation` records (and
:class:`~symgrad.explain_loop.Loop` blocks for scans) with text, LaTeX and Jupyter output, lookup
by name, and :meth:`Equations.evaluate`, which runs them in order through ``sympy.lambdify`` so
that the printed formulas can be checked against the compiled code's numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from .explain_loop import Loop
from .explain_print import LatexPrinter as _LatexPrinter
from .explain_print import TextPrinter as _TextPrinter
from .ir.node import Node
from .ir.to_sympy import NumPyMatrixPrinter, replace_exact, shaped_symbol

__all__ = ["Equation", "Equations"]


@dataclass(frozen=True)
class Equation:
    """One assignment ``symbol = expr``.

    Attributes
    ----------
    symbol
        The name: a ``Symbol`` (scalar) or ``MatrixSymbol`` (matrix).
    expr
        The right-hand side, over the inputs and earlier names.
    section
        ``"forward"`` (computed from the inputs alone) or ``"backward"``.
    node
        The IR node the equation computes (``None`` for an output alias or a formula named
        because a fused body repeats it).
    """

    symbol: sp.Basic
    expr: sp.Basic
    section: str = "backward"
    node: Node | None = None

    @property
    def name(self) -> str:
        return self.symbol.name


class Equations:
    """An ordered list of named assignments; each refers only to inputs and earlier names.

    Iterating gives ``(symbol, expr)`` pairs. ``str()`` prints one equation per line,
    :meth:`to_latex` gives LaTeX and Jupyter renders it as math. A model with a scan has
    :class:`~symgrad.explain_loop.Loop` blocks among its ``equations`` (see :attr:`loops`);
    iterating, indexing by name and :attr:`symbols` also reach the equations of their bodies.

    Parameters
    ----------
    equations
        The :class:`Equation` records, in order.
    inputs
        The input symbols of the compiled function.
    dims
        Its dimension symbols (e.g. a batch size ``n``).
    display
        Text shown for some names (``dL/dW`` prints as ``∂L/∂W``).
    latex_names
        LaTeX for some names (``δ2`` as ``\\delta_{2}``).
    sequences
        ``{name: (T, rows, cols)}`` of the sequence inputs (their symbols in the equations are
        the ``(T·rows, cols)`` stacks of their steps).
    """

    def __init__(
        self,
        equations: list[Equation],
        inputs: list | tuple = (),
        dims: list | tuple = (),
        display: Mapping | None = None,
        latex_names: Mapping | None = None,
        sequences: Mapping | None = None,
    ):
        self.equations = list(equations)
        self.inputs = list(inputs)
        self.dims = list(dims)
        self.display = dict(display or {})
        self.latex_names = dict(latex_names or {})
        self.sequences = dict(sequences or {})

    def _flat(self) -> list[Equation]:
        """Every equation, loop bodies included, in reading order."""
        out: list[Equation] = []
        for e in self.equations:
            out.extend(e.body if isinstance(e, Loop) else [e])
        return out

    @property
    def loops(self) -> list[Loop]:
        """The loop blocks (one per scan of the compiled graph), in order."""
        return [e for e in self.equations if isinstance(e, Loop)]

    # -- sequence protocol -----------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[sp.Basic, sp.Basic]]:
        return ((e.symbol, e.expr) for e in self._flat())

    def __len__(self) -> int:
        return len(self.equations)

    def __getitem__(self, key):
        """By position (an :class:`Equation`), or the right-hand side by name or symbol."""
        if isinstance(key, (int, slice)):
            return self.equations[key]
        name = key if isinstance(key, str) else getattr(key, "name", str(key))
        aliases = {name, name.replace("delta", "δ"), name.replace("∂", "d")}
        for e in self._flat():
            if e.name in aliases:
                return e.expr
        raise KeyError(key)

    def __contains__(self, key) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    @property
    def symbols(self) -> list[sp.Basic]:
        return [e.symbol for e in self._flat()]

    @property
    def names(self) -> list[str]:
        return [e.name for e in self._flat()]

    def as_dict(self) -> dict[sp.Basic, sp.Basic]:
        """``{symbol: expr}`` in order (loop bodies included)."""
        return {e.symbol: e.expr for e in self._flat()}

    def _part(self, section: str) -> Equations:
        kept = [e for e in self.equations if e.section == section]
        return Equations(
            kept, self.inputs, self.dims, self.display, self.latex_names, self.sequences
        )

    @property
    def forward(self) -> Equations:
        """The equations computed from the inputs alone."""
        return self._part("forward")

    @property
    def backward(self) -> Equations:
        """The equations of the backward pass (δs, gradients and their intermediates)."""
        return self._part("backward")

    # -- graph hooks -----------------------------------------------------------------------
    def labels(self) -> dict[Node, str]:
        """``{node: name}`` for every named node, e.g. to label a drawing of the graph."""
        out = {
            e.node: self._text(e.symbol)
            for e in self.equations
            if e.node is not None and not isinstance(e, Loop)
        }
        for loop in self.loops:
            if loop.node is not None:
                out[loop.node] = loop.header(self._text).rstrip(":")
        return out

    def backward_nodes(self) -> set[Node]:
        """The named nodes of the backward pass."""
        return {e.node for e in self.equations if e.node is not None and e.section == "backward"}

    # -- printing --------------------------------------------------------------------------
    def _text(self, expr) -> str:
        return _TextPrinter({"display": self.display}).doprint(expr)

    def lines(self) -> list[str]:
        """One ``name = expression`` line per equation; a loop is a ``for t = ...:`` line and
        its body, indented."""
        out = []
        for e in self.equations:
            if isinstance(e, Loop):
                out.append(e.header(self._text))
                out.extend(f"  {self._text(b.symbol)} = {self._text(b.expr)}" for b in e.body)
            else:
                out.append(f"{self._text(e.symbol)} = {self._text(e.expr)}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return f"<Equations: {len(self)} equations>\n{self}"

    def to_latex(self) -> str:
        """The equations as one LaTeX ``aligned`` block (via SymPy's LaTeX printer)."""
        printer = _LatexPrinter({"symbol_names": self.latex_names})
        rows = []
        for e in self.equations:
            if isinstance(e, Loop):
                rows.append(f"&{e.latex_header(printer.doprint)}")
                rows.extend(
                    f"\\qquad {printer.doprint(b.symbol)} &= {printer.doprint(b.expr)}"
                    for b in e.body
                )
            else:
                rows.append(f"{printer.doprint(e.symbol)} &= {printer.doprint(e.expr)}")
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.to_latex()}$"

    # -- numbers ---------------------------------------------------------------------------
    def evaluate(self, values: Mapping | None = None, **kwargs) -> dict[str, Any]:
        """Evaluate the equations in order with ``sympy.lambdify`` (NumPy and SciPy).

        Parameters
        ----------
        values, **kwargs
            Input values by symbol or name; matrix dimensions are bound from array shapes.

        Returns
        -------
        dict
            ``{name: value}`` for every equation, in order; for a loop, the names it defines
            (``h_T``, ``Σ_t ℓ_t``, ``δ_{1:T}``; a stack is the ``(T·rows, cols)`` matrix of
            the steps one above the other), its body run once per step.
        """
        given = {getattr(k, "name", k): v for k, v in (values or {}).items()}
        given.update(kwargs)
        env: dict[sp.Basic, Any] = {}
        for sym in self.inputs:
            if sym.name not in given:
                continue
            value = given[sym.name]
            if sym.name in self.sequences:
                # A (T, rows, cols) sequence is the (T·rows, cols) stack of its steps.
                value = np.asarray(value, dtype=np.float64)
                for d, size in zip(self.sequences[sym.name], value.shape):
                    if isinstance(d, sp.Symbol):
                        env[d] = int(size)
                value = value.reshape(-1, value.shape[-1])
            elif isinstance(sym, sp.MatrixSymbol):
                value = np.asarray(value, dtype=np.float64)
                for d, size in zip(sym.shape, value.shape):
                    if isinstance(d, sp.Symbol):
                        env[d] = int(size)
            env[sym] = value
        for d in self.dims:
            if d.name in given:
                env[d] = int(given[d.name])
        out: dict[str, Any] = {}
        cache: dict = {}

        def evaluate(expr, at):
            return _lambdify_eval(expr, at, cache)

        for e in self.equations:
            if isinstance(e, Loop):
                e.evaluate(env, evaluate)
                for sym, _, _ in e.outputs:
                    out[sym.name] = env[sym]
                continue
            env[e.symbol] = evaluate(e.expr, env)
            out[e.name] = env[e.symbol]
        return out


def _lambdify_eval(expr: sp.Basic, env: Mapping[sp.Basic, Any], cache: dict | None = None) -> Any:
    """Value of ``expr`` given ``env`` (symbol -> value), through ``sympy.lambdify``; ``cache``
    keeps the lambdified functions (a loop body is evaluated once per step)."""
    if isinstance(expr, (sp.Symbol, sp.MatrixSymbol)) and expr in env:
        return env[expr]
    if not isinstance(expr, sp.Basic):
        return expr
    if cache is not None and expr in cache:
        fn, free = cache[expr]
        return fn(*[env[s] for s in free])
    free = [s for s in env if _occurs(s, expr)]
    # Generated names ("dL/dW") are not identifiers: hand lambdify plain ones. Dimension symbols
    # keep their names, as they also occur in the shapes of the renamed matrices.
    renamed = {
        s: shaped_symbol(f"_v{k}", s.shape if isinstance(s, sp.MatrixSymbol) else ())
        for k, s in enumerate(free)
        if not s.name.isidentifier()
    }
    body = replace_exact(expr, renamed)
    args = [renamed.get(s, s) for s in free]
    printer = NumPyMatrixPrinter.for_lambdify()
    fn = sp.lambdify(args, body, modules=["scipy", "numpy"], printer=printer)
    if cache is not None:
        cache[expr] = (fn, free)
    return fn(*[env[s] for s in free])


def _occurs(sym: sp.Basic, expr: sp.Basic) -> bool:
    if isinstance(sym, sp.MatrixSymbol):
        return expr.has(sym)
    return sym in expr.free_symbols
