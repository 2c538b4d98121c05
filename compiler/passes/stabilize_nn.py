"""Stable forms of neural-net formulas written in plain SymPy.

A rewrite rule (for :func:`~symgrad.compiler.passes.rewrite.rewrite`) catching:

* a softmax written by hand, ``exp(X) ∘ 1/sum(exp(X), axis)`` → the max-shifted softmax;
* ``log(sum(exp(X), axis))`` → the max-shifted log-sum-exp;
* ``log(softmax(X))`` along the last axis → ``log_softmax(X)`` (one fused op);
* ``log(exp(v) / s)`` → ``v - log(s)`` (so the log of a softmax is a log-softmax) and
  ``log(exp(v))`` → ``v``;
* ``1/(1 + exp(-v))`` → ``sigmoid(v)`` (also inside the patterns below, so e.g.
  ``log(1/(1 + exp(-v)))`` is ``log(sigmoid(v))``); ``log(1 + exp(v))`` and ``log1p(exp(v))`` →
  ``softplus(v)``; ``log(sigmoid(v))``, ``-log(1 + exp(-v))`` and
  ``-softplus(-v)`` → ``log_sigmoid(v)``; ``log(1 - sigmoid(v))`` and ``log1p(-sigmoid(v))`` →
  ``log_sigmoid(-v)``; each also with ``v`` negated.

Scalar chains are recognised by composing the bodies of a short chain of one-input elementwise
nodes into one SymPy expression and looking it up in a table of templates (SymPy's canonical
form makes the lookup an exact match); the longest matching chain wins. The activation classes
live in ``symgrad.nn``, which this package may not import; importing ``symgrad.nn`` hands them
over through :func:`provide`, and until then only the structural rules apply.
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import log1p

from ...ir import ops_elementwise as ew
from ...ir import ops_nn, ops_softmax_rows
from ...ir.node import Node, make
from ...ir.ops_reduce import sum_op
from ...ir.ops_shape import broadcast_op, reshape_op
from ...ir.types import broadcast_shapes

#: Activation classes by name, handed over by ``symgrad.nn`` (sigmoid, softplus, log_sigmoid).
FUNCTIONS: dict[str, type] = {}
#: composed chain body (over ``a0``) -> replacement body (over ``a0``)
_TEMPLATES: dict[sp.Expr, sp.Expr] = {}
#: Longest chain of one-input nodes composed when matching templates.
_MAX_CHAIN = 5

_a0 = ew.a0
_EXP = sp.exp(_a0)
_LOG = sp.log(_a0)
#: Bodies that can head a template (cheap gate before composing a chain).
_HEADS = (_LOG, log1p(_a0), 1 / _a0, -_a0)


def provide(**classes: type) -> None:
    """Hand over the activation classes the templates rewrite to, and build the templates."""
    FUNCTIONS.update(classes)
    _TEMPLATES.clear()
    sigmoid, softplus = FUNCTIONS.get("sigmoid"), FUNCTIONS.get("softplus")
    log_sigmoid = FUNCTIONS.get("log_sigmoid")
    v = _a0
    pairs = []
    if sigmoid is not None:
        # Chains are canonicalised with 1/(1 + exp(-w)) -> sigmoid(w) before the lookup, so a
        # hand-written sigmoid matches this identity entry and is replaced by the function.
        pairs.append((sigmoid(v), sigmoid(v)))
    if softplus is not None:
        pairs += [(sp.log(1 + sp.exp(v)), softplus(v)), (log1p(sp.exp(v)), softplus(v))]
    if log_sigmoid is not None:
        pairs += [(-sp.log(1 + sp.exp(-v)), log_sigmoid(v)), (-log1p(sp.exp(-v)), log_sigmoid(v))]
        if sigmoid is not None:
            pairs += [
                (sp.log(sigmoid(v)), log_sigmoid(v)),
                (sp.log(1 - sigmoid(v)), log_sigmoid(-v)),
                (log1p(-sigmoid(v)), log_sigmoid(-v)),
            ]
        if softplus is not None:
            pairs.append((-softplus(-v), log_sigmoid(v)))
    for template, replacement in pairs:
        _TEMPLATES.setdefault(template, replacement)
        _TEMPLATES.setdefault(template.xreplace({v: -v}), replacement.xreplace({v: -v}))


def _is_hand_sigmoid(e: sp.Expr) -> bool:
    """``1/(1 + exp(w))``."""
    if not (e.is_Pow and e.exp == -1 and e.base.is_Add and len(e.base.args) == 2):
        return False
    one, other = sorted(e.base.args, key=lambda a: not a.is_Number)
    return one == 1 and isinstance(other, sp.exp)


def _canonical(e: sp.Expr) -> sp.Expr:
    sigmoid = FUNCTIONS.get("sigmoid")
    if sigmoid is None:
        return e
    return e.replace(_is_hand_sigmoid, lambda u: sigmoid(-_exp_argument(u.base)))


def _exp_argument(total: sp.Expr) -> sp.Expr:
    return next(a for a in total.args if isinstance(a, sp.exp)).args[0]


def _body(node: Node) -> sp.Expr | None:
    return node.op.body if isinstance(node.op, ew.ElementwiseOp) else None


def _single(node: Node) -> bool:
    return isinstance(node.op, ew.ElementwiseOp) and len(node.inputs) == 1


def _peel_views(node: Node) -> tuple[Node, list[Node]]:
    """The node under a stack of broadcast/reshape views, and the views (outermost first)."""
    views = []
    while node.op is broadcast_op or node.op is reshape_op:
        views.append(node)
        node = node.inputs[0]
    return node, views


def _reapply_views(value: Node, views: list[Node]) -> Node:
    for view in reversed(views):
        value = make(view.op, (value,), view.attrs)
    return value


def _chain_templates(node: Node) -> Node | None:
    """The longest chain of one-input nodes under ``node`` whose composed body is a template."""
    if not _single(node) or node.op.body not in _HEADS:
        return None
    composed, current, found = node.op.body, node, None
    for _ in range(_MAX_CHAIN):
        bottom = current.inputs[0]
        canonical = _canonical(composed)
        if canonical == _a0:
            found = bottom
        elif canonical in _TEMPLATES:
            replacement = _TEMPLATES[canonical]
            found = ew.apply(replacement, [bottom], type(replacement).__name__.lower())
        if not _single(bottom):
            break
        composed = composed.xreplace({_a0: bottom.op.body})
        current = bottom
    return found


def _log_sum_exp(node: Node) -> Node | None:
    """``log(view(sum(exp(x), axes)))`` → ``view(logsumexp(x, axes))`` (log commutes with views)."""
    if not _single(node) or node.op.body != _LOG:
        return None
    summed, views = _peel_views(node.inputs[0])
    if summed.op is not sum_op or _body(summed.inputs[0]) != _EXP:
        return None
    x = summed.inputs[0].inputs[0]
    if ops_nn.is_shifted(x):  # already the stable form (or its own output)
        return None
    lse = ops_nn.logsumexp(x, summed.attr("axes"), summed.attr("keepdims"))
    return _reapply_views(lse, views)


def _numerator_denominator(node: Node) -> tuple[Node, Node] | None:
    """``(e, d)`` if ``node`` is ``e / d`` or ``e * (1/d)``."""
    body = _body(node)
    if body is None or len(node.inputs) != 2:
        return None
    a, b = node.inputs
    if body == _a0 / ew.a1:
        return a, b
    if body == ew.a1 / _a0:
        return b, a
    if body == _a0 * ew.a1:
        for e, r in ((a, b), (b, a)):
            if _single(r) and r.op.body == 1 / _a0:
                return e, r.inputs[0]
    return None


def _softmax_by_hand(node: Node) -> Node | None:
    """``exp(x) / view(sum(exp(x), axes))`` → ``softmax(x, axes)`` (max-shifted)."""
    parts = _numerator_denominator(node)
    if parts is None:
        return None
    e, d = parts
    summed, _ = _peel_views(d)
    if _body(e) != _EXP or summed.op is not sum_op or summed.inputs[0] is not e:
        return None
    if e.shape != node.shape or ops_nn.is_shifted(e.inputs[0]):
        return None
    return ops_nn.softmax(e.inputs[0], summed.attr("axes"))


def _log_of_quotient(node: Node) -> Node | None:
    """``log(exp(v) / s)`` → ``v - log(s)``: turns the log of a softmax into a log-softmax."""
    if not _single(node) or node.op.body != _LOG:
        return None
    parts = _numerator_denominator(node.inputs[0])
    if parts is None or _body(parts[0]) != _EXP:
        return None
    v, s = parts[0].inputs[0], parts[1]
    under, _ = _peel_views(s)
    if broadcast_shapes([v.shape, under.shape]) == node.shape:
        s = under  # the log of the unbroadcast denominator: fewer logs
    return ew.sub(v, ew.apply(_LOG, [s], "log"))


def _log_of_row_softmax(node: Node) -> Node | None:
    """``log(view(softmax(x)))`` along the last axis → ``view(log_softmax(x))``: one fused op,
    and no ``log`` of a probability that underflowed to 0."""
    if not _single(node) or node.op.body != _LOG:
        return None
    inner, views = _peel_views(node.inputs[0])
    if inner.op is not ops_softmax_rows.row_softmax_op:
        return None
    return _reapply_views(ops_softmax_rows.row_op("log_softmax", inner.inputs[0]), views)


def stabilize_nn(node: Node) -> Node | None:
    """The rewrite rule: a stable replacement for ``node``, or None."""
    return (
        _softmax_by_hand(node)
        or _log_of_row_softmax(node)
        or _log_sum_exp(node)
        or _log_of_quotient(node)
        or _chain_templates(node)
    )
