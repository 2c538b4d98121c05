"""Build a training-step program: forward, backward and an elementwise update rule, fused into
one function that updates parameters and optimiser state in place."""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from ..ir import ops_elementwise as ew
from ..ir.errors import InputError, ShapeError
from ..ir.node import Node
from ..ir.ops_reduce import reduce_sum
from ..ir.ops_source import const, input_node
from ..ir.ops_sparse import add_rows
from ..ir.program import Program, flatten, unflatten
from .lower import Lowerer
from .passes import optimize
from .program import InputSpec, ProgramSet, index_bounds, input_specs, lower_outputs
from .reverse import grad
from .sparse_step import SPARSE_MODES, additive_coefficient, row_view


@dataclass
class UpdateRule:
    """An optimiser written as scalar SymPy update rules, applied elementwise to each parameter.

    Attributes
    ----------
    param, grad
        Placeholder symbols for one parameter element and its gradient.
    states
        ``(name, placeholder)`` per state array kept for each parameter (e.g. Adam's m and v).
    hypers
        Scalar placeholders shared by all parameters (learning rate, step count ...), passed at
        call time.
    updates
        Ordered ``(target, body)`` pairs; a target is ``param`` or a state placeholder. Later
        bodies see the new values of earlier targets, like statements in code.
    """

    param: sp.Symbol
    grad: sp.Symbol
    states: list = field(default_factory=list)
    hypers: list = field(default_factory=list)
    updates: list = field(default_factory=list)

    def key(self) -> str:
        return sp.srepr((self.param, self.grad, tuple(self.states), tuple(self.hypers),
                         tuple(self.updates)))  # fmt: skip


def state_name(param_name: str, state: str) -> str:
    return f"{param_name}:{state}"


def hyper_name(symbol: sp.Symbol) -> str:
    return f"opt:{symbol.name}"


CLIP = sp.Symbol("clip_norm")


def _apply_body(body: sp.Expr, env: dict) -> Node:
    """Lower an update body with its placeholders bound to nodes.

    Lowering it fine-grained (rather than as one elementwise body) keeps the parts that depend
    only on scalar hyperparameters, such as Adam's 1 - beta1**t, as scalar nodes computed once
    per step outside the parameter loops.
    """
    missing = [s for s in body.free_symbols if s not in env]
    if missing:
        names = sorted(map(str, missing))
        raise InputError(f"update rule uses unknown symbol(s) {names} in {body}")
    lowerer = Lowerer()
    lowerer.bindings = dict(env)
    return lowerer.lower(body)


def _clip(grads: list[Node], limit: Node) -> list[Node]:
    """Scale all gradients by min(1, limit / global norm)."""
    total = None
    for g in grads:
        sq = reduce_sum(ew.square(g)) if g.ndim else ew.square(g)
        total = sq if total is None else ew.add(total, sq)
    factor = ew.apply(sp.Min(1, ew.a1 / sp.sqrt(ew.a0)), [total, limit], "clip_factor")
    return [ew.mul(g, factor) for g in grads]


def build_step(
    exprs, params, rule: UpdateRule, clip_norm: bool = False, sparse="auto"
) -> ProgramSet:
    """The ``step`` program: value of ``exprs[0]`` (and aux), parameters updated in place.

    ``sparse`` chooses row-sparse updates of embedding tables (see
    :mod:`symgrad.compiler.sparse_step`): ``"auto"`` where exact, ``True`` also where lazy,
    ``False`` never.
    """
    if sparse not in SPARSE_MODES:
        raise InputError(f"sparse must be one of {SPARSE_MODES}, got {sparse!r}")
    for p in params:
        if not isinstance(p, sp.MatrixSymbol) or getattr(p, "is_index_input", False):
            raise InputError(
                f"trainable parameter {p} must be a float MatrixSymbol (it is updated in "
                "place); use a 1 x 1 MatrixSymbol for a scalar"
            )
    _, outs, ordered, param_nodes, dims = lower_outputs(exprs, params)
    main, aux = outs[0], outs[1:]
    if main.ndim:
        raise ShapeError("a training step needs a scalar loss")
    grads = grad(main, param_nodes, const(1))
    views = [
        row_view(node, g, rule, sparse, k) for k, (node, g) in enumerate(zip(param_nodes, grads))
    ]
    grads = [g if v is None else v.grad for g, v in zip(grads, views)]
    hypers = {h: input_node(hyper_name(h), (), role="hyper") for h in rule.hypers}
    hyper_nodes = list(hypers.values())
    if clip_norm:
        limit = input_node(hyper_name(CLIP), (), role="hyper")
        hyper_nodes.append(limit)
        grads = _clip(grads, limit)

    state_nodes: list[Node] = []
    state_specs: list[InputSpec] = []
    inplace: list[tuple[Node, Node]] = []
    direct = additive_coefficient(rule) if not clip_norm else None
    for sym, node, g, view in zip(params, param_nodes, grads, views):
        if view is not None and direct is not None:
            # p ← p + c·g: add c times each row contribution straight into the table.
            coefficient = _apply_body(direct, dict(hypers))
            inplace.append((node, add_rows(node, coefficient, view.scatters)))
            continue

        def rows(array: Node, view=view) -> Node:
            return array if view is None else view.take(array)

        def write(array: Node, value: Node, view=view) -> tuple[Node, Node]:
            return (array, value if view is None else view.put(array, value))

        env = dict(hypers)
        env[rule.param] = rows(node)
        env[rule.grad] = g
        own = []
        for name, placeholder in rule.states:
            s = input_node(state_name(sym.name, name), node.shape, role="state")
            env[placeholder] = rows(s)
            own.append((placeholder, s))
            state_nodes.append(s)
            state_specs.append(InputSpec(state_name(sym.name, name), None, node.shape, True))
        for target, body in rule.updates:
            env[target] = _apply_body(sp.sympify(body), env)
        inplace.append(write(node, env[rule.param]))
        inplace.extend(write(s, env[placeholder]) for placeholder, s in own)

    value = (main, *aux) if aux else main
    flat = flatten(value) + [v for _, v in inplace]
    optimised = optimize(flat)
    n_value = len(flatten(value))
    value = unflatten(value, optimised[:n_value])
    inplace = [(t, v) for (t, _), v in zip(inplace, optimised[n_value:])]

    inputs = [node for _, _, node in ordered]
    specs = input_specs(ordered)
    specs += state_specs
    specs += [InputSpec(n.attr("name"), None, (), False) for n in hyper_nodes]
    all_params = inputs + state_nodes + hyper_nodes
    ps = ProgramSet(specs, [inputs.index(n) for n in param_nodes], [o.shape for o in outs],
                    sorted(dims, key=str))  # fmt: skip
    ps.index_bounds = index_bounds(outs)
    ps.programs.append(Program("step", all_params, value, inplace=inplace))
    ps.inplace = [all_params.index(t) for t, _ in inplace]
    return ps
