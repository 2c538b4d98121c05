"""Raise a scan (a loop over time steps) to SymPy: a :class:`LoopBlock` of per-step equations.

A scan's step body is raised like any graph, with symbols subscripted by the step ``t``:

* a sequence ``X`` of shape ``(T, r, c)`` is written as its steps stacked vertically, the
  ``(T·r, c)`` matrix the generated code multiplies (so ``X·W`` is the hoisted projection of
  every step at once); inside the loop its step ``t`` is ``X_t`` (the user's step symbol, such
  as ``x_t``, for a sequence input);
* a state ``h`` is ``h_{t-1}`` before the step and ``h_t`` after it (``h_{t+1}`` and ``h_t`` for a
  scan running backwards); its initial value is shown as ``h_0 = h0`` and its last one is
  ``h_T``;
* a backward (BPTT) scan carries the error arriving at each state from the later steps:
  ``δh_t``, read at step ``t``, and ``δh_{t-1}``, the error it passes to step ``t - 1``;
* a per-step output summed over time is ``Σ_t ℓ_t``, a stacked one ``h_{1:T}`` (the ``(T·r, c)``
  stack of ``h_t``), and a stacked value read by a later loop is read there as its step
  (``h_t``), so a backward loop reads the forward loop's values under their forward names.

Other body values used more than once, or stacked for use after the loop, are named: in a
forward body activations ``a1_t ...`` and other values ``u1_t ...``, in a backward body (whose
values are error signals) ``δ_t`` or ``δ1_t, δ2_t ...``; sums of a backward body (gradient
parts summed inside the loop) are ``g_t``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy as sp

from .node import Node, toposort
from .ops_elementwise import ElementwiseOp
from .to_sympy import (
    Assignment,
    is_ones,
    raise_graph,
    shaped_symbol,
    trivial_nodes,
    use_counts,
)

__all__ = ["LoopBlock", "ScanRaiser", "step_name"]

#: The step index of every loop.
T_INDEX = sp.Symbol("t", integer=True)

_GREEK = {"δ": "\\delta", "ℓ": "\\ell", "Σ": "\\Sigma"}


@dataclass(frozen=True, eq=False)
class LoopBlock:
    """A scan raised to SymPy: per-step equations and what the loop reads and defines.

    Attributes
    ----------
    node
        The scan node.
    index, length
        The step symbol ``t`` and the number of steps ``T``.
    reverse
        Whether the loop runs from step ``T`` down to ``1``.
    backward
        Whether the scan is a BPTT scan built by differentiation.
    sequences
        ``(step, stacked)`` pairs: inside the loop ``step`` is block ``t`` of ``stacked``.
    carries
        ``(previous, new, initial)`` triples: ``previous`` holds ``initial`` before the first
        step and the step's ``new`` value after each step.
    body
        The per-step equations (:class:`~symgrad.ir.to_sympy.Assignment`), in order.
    outputs
        One ``(symbol, kind, step)`` triple per scan output: ``kind`` is ``"final"`` (the last
        ``step`` value of a carry), ``"sum"`` (the sum of ``step`` over all steps) or
        ``"stack"`` (the ``step`` values stacked vertically, in step order ``1 … T``).
    starts
        The name of each carry's value before the first step (``h_0``, ``δh_T``).
    latex_names
        LaTeX for the names the loop introduced.
    """

    node: Node
    index: sp.Symbol
    length: sp.Expr
    reverse: bool
    backward: bool
    sequences: tuple
    carries: tuple
    body: tuple
    outputs: tuple
    starts: tuple = ()
    latex_names: dict = field(default_factory=dict)
    symbol = None


def _subscript(e: sp.Expr) -> str:
    text = str(e).replace(" ", "")
    return text if len(text) == 1 else "{" + text + "}"


def step_name(base: str, sub: sp.Expr) -> str:
    """``h_t``, ``h_{t-1}``, ``δh_T``: ``base`` subscripted by ``sub``.

    Examples
    --------
    >>> step_name("h", T_INDEX - 1), step_name("P", T_INDEX)
    ('h_{t-1}', 'P_t')
    """
    return f"{base}_{_subscript(sub)}"


def _base_latex(base: str) -> str:
    head, digits = re.match(r"(.*?)(\d*)(')*$", base).group(1, 2)
    primes = "'" * base.count("'")
    for ch, tex in _GREEK.items():
        if head.startswith(ch):
            rest = head[len(ch) :]
            head = tex + (" " + sp.latex(sp.Symbol(rest)) if rest else "")
            break
    else:
        head = sp.latex(sp.Symbol(head)) if head else ""
    text = head + (f"_{{{digits}}}" if digits else "") + primes
    return "{" + text + "}" if digits or "_" in head else text


def _step_latex(base: str, sub: sp.Expr) -> str:
    return f"{_base_latex(base)}_{{{sp.latex(sub)}}}"


def _is_activation(node: Node) -> bool:
    if not isinstance(node.op, ElementwiseOp):
        return False
    body = node.op.body
    return bool(body.atoms(sp.Function)) or any(not p.exp.is_Integer for p in body.atoms(sp.Pow))


class ScanRaiser:
    """Names and raises the scans of one graph (see the module docstring).

    Parameters
    ----------
    inputs
        The SymPy symbol of each graph input, by name (as for
        :func:`~symgrad.ir.to_sympy.raise_graph`).
    """

    def __init__(self, inputs: Mapping[str, sp.Basic] | None = None):
        self.inputs = dict(inputs or {})
        #: stacked symbol -> the symbol of its step ``t`` inside a loop
        self.step_of: dict[sp.Basic, sp.Basic] = {}
        #: step symbol -> (base name, subscript offset from t)
        self.parts: dict[sp.Basic, tuple[str, sp.Expr]] = {}
        self.taken: set[str] = {str(v) for v in self.inputs.values()}
        self.latex_names: dict[sp.Basic, str] = {}
        self._forward_carries: dict[int, list[str]] = {}
        self._seq_count = 0

    # -- names of a scan's inputs ------------------------------------------------------------
    def input_names(self, loops, trivial: set[int], wanted: dict, taken: set) -> dict[Node, str]:
        """Names for the scans' sequence and closure inputs that are worth one.

        A loop reads block ``t`` of a sequence, so a computed sequence (a hoisted projection
        ``X·W``) gets a name (``P``, ``P1``, ...); a computed closure value gets a ``t`` name.
        """
        self.taken |= set(taken)
        out: dict[Node, str] = {}
        closure_k = 0
        for node in loops:
            body = node.op.body
            n_seq, n_carry = len(body.seq_params), len(body.carry_params)
            for k, inp in enumerate(node.inputs):
                if id(inp) in wanted or inp in out or inp.op.name in ("input", "scan_output"):
                    continue
                if n_seq <= k < n_seq + n_carry or id(inp) in trivial:
                    continue
                if k < n_seq:
                    self._seq_count += 1
                    out[inp] = self._unique("P" if self._seq_count == 1 else f"P{self._seq_count}")
                else:
                    closure_k += 1
                    out[inp] = self._unique(f"C{closure_k}")
        return out

    def _unique(self, name: str) -> str:
        while name in self.taken:
            name += "'"
        self.taken.add(name)
        return name

    # -- one loop ----------------------------------------------------------------------------
    def _symbol(self, base: str, off, shape) -> sp.Basic:
        sym = shaped_symbol(step_name(base, T_INDEX + off), shape)
        self.parts[sym] = (base, sp.sympify(off))
        self.latex_names[sym] = _step_latex(base, T_INDEX + off)
        return sym

    def _carry_bases(self, node: Node) -> list[str]:
        body = node.op.body
        if not body.is_backward:
            bases = [self._unique(p.attr("name")) for p in body.carry_params]
            self._forward_carries[id(node)] = bases
            return bases
        # The forward scan this one differentiates: the one whose stacks it reads.
        for inp in node.inputs:
            if inp.op.name == "scan_output":
                fwd = self._forward_carries.get(id(inp.inputs[0]))
                if fwd is not None and len(fwd) == len(body.carry_params):
                    return [self._unique(f"δ{b}") for b in fwd]
        return [self._unique(f"δs{j + 1}") for j in range(len(body.carry_params))]

    def raise_scan(self, node: Node, args: list) -> tuple[LoopBlock, list]:
        """The loop block of scan ``node`` (its inputs raised to ``args``) and the outer value
        of each of its outputs."""
        body = node.op.body
        n_seq, n_carry = len(body.seq_params), len(body.carry_params)
        length = sp.sympify(node.inputs[0].shape[0])
        env = dict(self.inputs)

        sequences = []
        for p, outer, value in zip(body.seq_params, node.inputs, args[:n_seq]):
            step = self.step_of.get(value)
            if step is None and is_ones(value) is not None:
                step = _constant_step(value, p.shape)
            elif step is None:
                base = p.attr("name") if outer.op.name == "input" else str(value)
                step = self._symbol(base, 0, p.shape)
                if outer.op.name == "input":  # the user's own step symbol (x_t)
                    step = shaped_symbol(base, p.shape)
                    self.parts[step] = (base, sp.S.Zero)
                    self.latex_names[step] = sp.latex(sp.Symbol(base))
                self.step_of[value] = step
            env[p.attr("name")] = step
            sequences.append((step, value))

        # States: before the step h_{t-1} (h_{t+1} backwards), after it h_t; a BPTT carry is
        # δh_t before the step and δh_{t-1} (the error passed to the previous step) after it.
        bases = self._carry_bases(node)
        if body.is_backward:
            prev_off, new_off = 0, (-1 if body.reverse else 1)
        else:
            prev_off, new_off = (1 if body.reverse else -1), 0
        carries = []
        for p, base, init in zip(body.carry_params, bases, args[n_seq : n_seq + n_carry]):
            prev = self._symbol(base, prev_off, p.shape)
            env[p.attr("name")] = prev
            carries.append([prev, self._symbol(base, new_off, p.shape), init])
        for p, value in zip(body.closure_params, args[n_seq + n_carry :]):
            env[p.attr("name")] = value

        names = self._body_names(node, bases, new_off)
        raised = raise_graph(body.outputs, env, names, share=False, scans=self)
        equations = list(raised.assignments)
        defined = {a.symbol for a in equations if isinstance(a, Assignment)}
        outputs = []
        for out in body.outputs:
            step = raised.values[id(out)]
            if out in names and step != shaped_symbol(names[out], out.shape):
                # An output that is a parameter or a constant still gets its name.
                sym = shaped_symbol(names[out], out.shape)
                if sym not in defined:
                    equations.append(Assignment(out, sym, step))
                    defined.add(sym)
                    self._register(sym, names[out])
                step = sym
            outputs.append(step)
        for c, step in zip(carries, outputs[:n_carry]):
            c[1] = step

        first, last = (length, sp.S.One) if body.reverse else (sp.S.One, length)
        starts = []
        for (prev, _, _), base in zip(carries, bases):
            start = shaped_symbol(step_name(base, first + prev_off), getattr(prev, "shape", ()))
            self.latex_names[start] = _step_latex(base, first + prev_off)
            starts.append(start)
        outer_outputs, out_values = [], []
        nc, ns = n_carry, len(body.sum_out)
        for k, step in enumerate(outputs):
            base, off = self.parts.get(step, (str(step), sp.S.Zero))
            shape = node.op.output_type(node, k).shape
            if k < nc:
                kind = "final"
                sym = shaped_symbol(step_name(base, last + off), shape)
                self.latex_names[sym] = _step_latex(base, last + off)
            elif k < nc + ns:
                kind = "sum"
                sym = shaped_symbol(f"Σ_t {step}", shape)
                self.latex_names[sym] = f"\\sum_{{t}} {self.latex_names.get(step, sp.latex(step))}"
            else:
                kind = "stack"
                lo, hi = sp.S.One + off, length + off
                sym = shaped_symbol(f"{base}_{{{_plain(lo)}:{_plain(hi)}}}", shape)
                self.latex_names[sym] = f"{_base_latex(base)}_{{{sp.latex(lo)}:{sp.latex(hi)}}}"
                self.step_of[sym] = step
            outer_outputs.append((sym, kind, step))
            out_values.append(sym)
        block = LoopBlock(
            node=node,
            index=T_INDEX,
            length=length,
            reverse=body.reverse,
            backward=body.is_backward,
            sequences=tuple(sequences),
            carries=tuple(tuple(c) for c in carries),
            body=tuple(equations),
            outputs=tuple(outer_outputs),
            starts=tuple(starts),
            latex_names=dict(self.latex_names),
        )
        return block, out_values

    def _register(self, sym, name: str) -> None:
        base, _, sub = name.rpartition("_")
        self.parts.setdefault(sym, (base, sp.S.Zero))
        self.latex_names.setdefault(sym, _step_latex(base, T_INDEX))

    def _body_names(self, node: Node, bases: list[str], new_off) -> dict[Node, str]:
        """Names of the body's outputs and of its values used more than once."""
        body = node.op.body
        params = {id(p) for p in body.params}
        names: dict[Node, str] = {}
        for out, base in zip(body.carry_out, bases):
            if id(out) not in params:
                names.setdefault(out, step_name(base, T_INDEX + new_off))
        order = toposort(body.outputs, stop=body.params)
        counts = use_counts(body.outputs)
        cheap = trivial_nodes(order)
        wanted = [n for n in body.sum_out if n not in names and id(n) not in params]
        wanted_ids = {id(n) for n in wanted}
        kinds: dict[str, list[Node]] = {}
        sum_kind = "g" if body.is_backward else "ℓ"
        for n in order:
            stacked = any(n is s for s in body.stack_out)
            if n in names or id(n) in params or (id(n) in cheap and not stacked):
                continue
            if id(n) in wanted_ids:
                kind = sum_kind
            elif counts.get(id(n), 0) > 1 or stacked:
                if body.is_backward:
                    kind = "δ"  # error signals: what a backward step computes
                else:
                    kind = "a" if _is_activation(n) else "u"
            else:
                continue
            kinds.setdefault(kind, []).append(n)
        for kind, members in kinds.items():
            for k, n in enumerate(members, 1):
                base = self._unique(kind if len(members) == 1 else f"{kind}{k}")
                names[n] = step_name(base, T_INDEX)
        for n, name in names.items():
            sym = shaped_symbol(name, n.shape)
            base = name.rsplit("_", 1)[0] if name.endswith("_t") else None
            if base is not None and sym not in self.parts:
                self.parts[sym] = (base, sp.S.Zero)
                self.latex_names[sym] = _step_latex(base, T_INDEX)
        return names


def _plain(e: sp.Expr) -> str:
    return str(e).replace(" ", "")


def _constant_step(value, step_shape) -> sp.Basic:
    """Block ``t`` of a constant stacked sequence ``c·1``: ``c·1`` of the step's shape."""
    c = is_ones(value)
    if not step_shape:
        return c
    from .to_sympy import _ones, _shape2

    return _ones(c, _shape2(tuple(step_shape)))
