"""Read the gradients symgrad derived, as math.

:func:`gradient_equations` raises the optimised ``value_and_grad`` program of a compiled function
(exactly the graph the generated code computes, not a fresh ``sympy.diff``) back to SymPy, as an
ordered list of named assignments; :func:`forward_equations` does the same for the ``value``
program and :func:`explain` prints both, one equation per line. Matrix models stay in matrix
form (``MatMul``, ``Transpose``, ``HadamardProduct``); see :mod:`symgrad.ir.to_sympy`.

Naming rule
-----------
Every node used more than once gets a name and a node used once is inlined into its user, except
inputs, constants and one-step views of them (``W2ᵀ``, ``1·b1``), which are cheap to repeat. A
formula that a fused derivative body repeats (``Heaviside(x - y)`` next to ``z1 = x - y``) is
named too, so no subexpression appears in two equations. Names follow the backprop lectures:

``L``
    The value of the compiled expression (the loss); further outputs are ``aux1, aux2, ...``.
``dL/dW``
    The gradient with respect to the input ``W`` (printed ``∂L/∂W``).
``h<l>``
    The output of an *activation*: an elementwise op of one operand that is not linear in it
    (``tanh``, ``sigmoid``, ``exp``, ``relu``, a square ...), or a named function of several
    (``Max``, ``logaddexp`` ...). Activations that feed a matrix product or another activation
    (a network's layer outputs) are always named. ``l`` counts activations on the longest path
    from the inputs, so ``h1 = tanh(X·W1 + 1·b1)`` is the first hidden layer.
``z<l>``
    A *pre-activation* used more than once: the operand of an activation, or an affine layer
    output (a product with one differentiated input, ``h·W``, plus linear terms such as
    ``+ 1·b`` or ``- Y``). Its layer ``l`` is one more than the number of activations before it.
``δ<l>``
    The error signal arriving at the pre-activations of layer ``l``: ``δl = ∂L/∂zl``, the
    cotangent of a pre-activation as the backward graph computes it. Always named. Layers are
    numbered from the inputs, so in an MLP ``δl`` pairs with ``Wl`` and the output layer has the
    highest number: ``∂L/∂Wl = h(l-1)ᵀ·δl`` and ``δl = (δ(l+1)·W(l+1)ᵀ) ∘ f'(zl)``.
``t<k>``
    Any other shared intermediate, numbered in order.

Scans
-----
A scan (a recurrent net) is a :class:`~symgrad.explain_loop.Loop` block among the equations:
``for t = 1 … T, from h_0 = h0:`` and its per-step equations in matrix form (``h_t`` from
``h_{t-1}``; a sequence ``X`` is the stack of its steps and ``P = X·W`` the input projection
computed for all steps before the loop). The backward pass is a loop ``for t = T … 1``
carrying ``δh_t``, the error arriving at ``h_t`` from step ``t + 1``; it passes on
``δh_{t-1}``, and the weight gradients after it are products over stacked steps, such as
``∂L/∂U = h_{0:T-1}ᵀ·δ_{1:T}``. Names are those of :mod:`symgrad.ir.to_sympy_scan`.

Two names of one kind and layer get suffixes (``δ2_1``, ``δ2_2``); a name that a user symbol
already has gets primes. A node that is also an output keeps its first name and the output is
written as an alias (``dL/dx = δ1``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import sympy as sp

from .compiler.passes import optimize
from .compiler.program import ProgramSet
from .compiler.reverse import grad
from .explain_equations import Equation, Equations
from .explain_loop import Loop
from .explain_share import is_cheap, share_repeated
from .ir.errors import SymgradError
from .ir.node import Node, toposort
from .ir.ops_source import const
from .ir.program import Program, flatten
from .ir.to_sympy import (
    SOURCE_OPS,
    raise_graph,
    replace_exact,
    shaped_symbol,
    trivial_nodes,
    use_counts,
)
from .ir.to_sympy_scan import LoopBlock

if TYPE_CHECKING:  # pragma: no cover
    from .codegen.compiled import Compiled

__all__ = [
    "Equation", "Equations", "Loop", "explain", "forward_equations", "gradient_equations",
    "is_cheap", "share_repeated",
]  # fmt: skip


# -- roles of forward nodes ---------------------------------------------------------------------
def _partials_constant(node: Node) -> list[bool]:
    op = node.op
    out = []
    for i in range(op.nargs):
        try:
            out.append(bool(op.partial(i)[0].is_number))
        except Exception:  # noqa: BLE001 - a body SymPy cannot differentiate is not linear
            out.append(False)
    return out


def _is_activation(node: Node) -> bool:
    """An elementwise op that bends its operand (see the module docstring)."""
    if node.op.family != "elementwise":
        return False
    if isinstance(node.op.body, sp.core.function.Application):
        return True
    return node.op.nargs == 1 and not _partials_constant(node)[0]


class _Roles:
    """Activations, pre-activations and layer depths of a program's forward graph."""

    def __init__(self, value_nodes: list[Node], wrt_nodes: list[Node]):
        self.order = toposort(value_nodes)
        self.forward = {id(n) for n in self.order}
        wrt = {id(w) for w in wrt_nodes}
        users: dict[int, list[Node]] = {}
        for n in self.order:
            for i in n.inputs:
                users.setdefault(id(i), []).append(n)
        self.activation = {id(n) for n in self.order if _is_activation(n)}
        self.depth: dict[int, int] = {}
        depends: set[int] = set()
        affine: set[int] = set()
        downstream: set[int] = set()  # nodes computed from an affine node
        for n in self.order:
            below = max((self.depth[id(i)] for i in n.inputs), default=0)
            self.depth[id(n)] = below + (1 if id(n) in self.activation else 0)
            if id(n) in wrt or any(id(i) in depends for i in n.inputs):
                depends.add(id(n))
            if self._param_matmul(n, wrt):
                affine.add(id(n))
            elif self._linear(n) and any(id(i) in affine for i in n.inputs):
                # h·W + 1·b - Y is affine; z - logsumexp(z) is not (its other term uses z).
                if all(id(i) in affine or id(i) not in downstream for i in n.inputs):
                    affine.add(id(n))
            if id(n) in affine or any(id(i) in downstream for i in n.inputs):
                downstream.add(id(n))
        self.pre: list[Node] = [
            n
            for n in self.order
            if n.op.name not in SOURCE_OPS
            and id(n) in depends
            and (id(n) in affine or any(id(u) in self.activation for u in users.get(id(n), ())))
        ]
        self.pre_ids = {id(n) for n in self.pre}
        # Layer outputs: activations feeding a product or another activation.
        self.layer_outputs = {
            id(n)
            for n in self.order
            if id(n) in self.activation
            and any(u.op.name == "matmul" or id(u) in self.activation for u in users.get(id(n), ()))
        }

    @staticmethod
    def _param_matmul(n: Node, wrt: set[int]) -> bool:
        if n.op.name != "matmul":
            return False

        def is_param(x: Node) -> bool:
            if x.op.name == "transpose":
                x = x.inputs[0]
            return id(x) in wrt

        return sum(is_param(i) for i in n.inputs) == 1

    @staticmethod
    def _linear(n: Node) -> bool:
        if n.op.name in ("transpose", "reshape", "broadcast_to"):
            return True
        return n.op.family == "elementwise" and all(_partials_constant(n))

    def layer(self, z: Node) -> int:
        return self.depth[id(z)] + 1


def _cotangents(main: Node, wrt_nodes: list[Node], targets: list[Node]) -> dict[int, Node]:
    """The optimised cotangent node of each target, as the program's backward graph has it.

    Differentiating with the targets as extra ``wrt`` nodes builds the same (hash-consed)
    cotangent nodes as the program's own reverse pass, and optimising them with the same
    passes gives the nodes of the optimised program.
    """
    if not targets:
        return {}
    nodes = grad(main, list(wrt_nodes) + list(targets), const(1, main.shape))
    optimised = optimize(nodes)
    return {id(t): c for t, c in zip(targets, optimised[len(wrt_nodes) :])}


# -- building the equations ---------------------------------------------------------------------
def _program_set(f: Compiled | ProgramSet) -> ProgramSet:
    if isinstance(f, ProgramSet):
        return f
    try:
        programs = f.programs
    except AttributeError as err:
        raise SymgradError(f"cannot read the equations of {f!r}: {err}") from None
    if not isinstance(programs, ProgramSet):
        raise SymgradError(f"{f!r} has no programs to explain")
    return programs


def _program(ps: ProgramSet, name: str) -> Program:
    for p in ps.programs:
        if p.name == name:
            return p
    raise SymgradError(f"no program {name!r} to explain")


def _grad_latex(sym: sp.Basic) -> str:
    return f"\\frac{{\\partial L}}{{\\partial {sp.latex(sym)}}}"


def _layer_latex(base: str, layer: int, k: int | None) -> str:
    """``\\delta_{2}``, ``h_{1,2}``: LaTeX of a layer-numbered name (``k`` numbers ties)."""
    head = "\\delta" if base == "δ" else base
    return f"{head}_{{{layer}}}" if k is None else f"{head}_{{{layer},{k}}}"


def _build(ps: ProgramSet, program: Program, with_grads: bool) -> Equations:
    inputs = {s.name: s.symbol for s in ps.inputs}
    wrt_syms = [ps.inputs[i].symbol for i in ps.wrt]
    wrt_nodes = [program.params[i] for i in ps.wrt]
    if with_grads:
        value, grads = program.result
        grad_nodes = flatten(grads)
    else:
        value, grad_nodes = program.result, []
    value_nodes = flatten(value)
    roles = _Roles(value_nodes, wrt_nodes)
    roots = value_nodes + grad_nodes
    order = toposort(roots)
    position = {id(n): k for k, n in enumerate(order)}
    counts = use_counts(roots)
    cheap = trivial_nodes(order)

    # Output names, in output order: L, aux1, ..., then dL/dW for each wrt symbol.
    outputs: list[tuple[Node, str]] = [(value_nodes[0], "L")]
    outputs += [(n, f"aux{k}") for k, n in enumerate(value_nodes[1:], 1)]
    outputs += [(n, f"dL/d{s.name}") for n, s in zip(grad_nodes, wrt_syms)]

    # δ: cotangents of pre-activations that the backward graph computes.
    delta_layer: dict[int, int] = {}
    if with_grads:
        # Differentiating again through a scan would build a new BPTT loop, whose nodes the
        # program does not have: only values no scan depends on can be matched.
        upstream = _scan_ancestors(order)
        cots = _cotangents(
            value_nodes[0],
            [w for w in wrt_nodes if id(w) not in upstream],
            [z for z in roles.pre if id(z) not in upstream],
        )
        for z in roles.pre:
            c = cots.get(id(z))
            if c is None or id(c) not in position or id(c) in roles.forward or id(c) in cheap:
                continue
            delta_layer[id(c)] = max(delta_layer.get(id(c), 0), roles.layer(z))

    taken = {s.name for s in ps.inputs} | {str(d) for d in ps.dims}

    def unique(name: str) -> str:
        while name in taken:
            name += "'"
        return name

    outputs = [(node, unique(name)) for node, name in outputs]
    # Which nodes get a name, and its kind: (base, layer) before numbering ties.
    kinds: dict[int, tuple[str, int | None]] = {}
    for c_id, layer in delta_layer.items():
        kinds[c_id] = ("δ", layer)
    for k, (node, name) in enumerate(outputs):
        # A gradient that is a forward value (d(x*y)/dy = x) keeps a forward name.
        if k < len(value_nodes) or id(node) not in roles.forward:
            kinds.setdefault(id(node), (name, None))
    for node in order:
        if id(node) in kinds or id(node) in cheap or node.op.name in _LOOP_OPS:
            continue
        shared = counts.get(id(node), 0) > 1
        if id(node) in roles.activation and (shared or id(node) in roles.layer_outputs):
            kinds[id(node)] = ("h", roles.depth[id(node)])
        elif shared and id(node) in roles.pre_ids:
            kinds[id(node)] = ("z", roles.layer(node))
        elif shared:
            kinds[id(node)] = ("t", None)

    # Names: layered kinds numbered by layer (suffixes for ties), t-names in dependency order.
    names: dict[Node, str] = {}
    latex_of: dict[int, str] = {}
    groups: dict[tuple, list[Node]] = {}
    for node in order:
        kind = kinds.get(id(node))
        if kind is not None and kind[0] in ("δ", "h", "z"):
            groups.setdefault(kind, []).append(node)
    for (base, layer), members in groups.items():
        for k, node in enumerate(members, 1):
            tie = len(members) > 1
            names[node] = unique(f"{base}{layer}_{k}" if tie else f"{base}{layer}")
            latex_of[id(node)] = _layer_latex(base, layer, k if tie else None)
    t_count = 0
    for node in order:
        kind = kinds.get(id(node))
        if kind is None or node in names:
            continue
        if kind[0] == "t":
            # A placeholder: t-names are numbered in reading order once all are known.
            t_count += 1
            names[node] = f"{_TMP}{t_count}"
        else:
            names[node] = kind[0]  # an output name, already unique

    raised = raise_graph(roots, inputs, names, share=False)

    display: dict[sp.Basic, str] = {}
    latex_names: dict[sp.Basic, str] = {}
    equations: list = []
    for a in raised.assignments:
        section = "forward" if id(a.node) in roles.forward else "backward"
        if isinstance(a, LoopBlock):
            equations.append(_loop(a, section))
            latex_names.update(a.latex_names)
            continue
        equations.append(Equation(a.symbol, a.expr, section, a.node))
        if id(a.node) in latex_of:
            latex_names[a.symbol] = latex_of[id(a.node)]
    wrt_by_grad = {name: w for (_, name), w in zip(outputs[len(value_nodes) :], wrt_syms)}
    # An output whose node is named otherwise (a δ, another output) or not at all (an input,
    # a constant) is written as an alias of that name or value.
    defined = {a.symbol.name for a in raised.assignments if not isinstance(a, LoopBlock)}
    for node, name in outputs:
        if name in defined:
            continue
        section = "backward" if name in wrt_by_grad else "forward"
        symbol = shaped_symbol(name, node.shape)
        equations.append(Equation(symbol, raised.value(node), section, None))
        defined.add(name)
    for e in equations:
        if e.name in wrt_by_grad:
            w = wrt_by_grad[e.name]
            display[e.symbol] = f"∂L/∂{w.name}"
            latex_names[e.symbol] = _grad_latex(w)
    # Forward equations first (outputs aliases included), then the backward pass.
    equations.sort(key=lambda e: 0 if e.section == "forward" else 1)

    def fresh() -> str:
        nonlocal t_count
        t_count += 1
        return f"{_TMP}{t_count}"

    equations = _number_t_names(share_repeated(equations, fresh, set(ps.dims)), unique)
    # A sequence input reads as the stack of its steps, the (T·rows, cols) matrix.
    params = {p.attr("name"): p for p in program.params if p.op.name == "input"}
    symbols, sequences = [], {}
    for spec in ps.inputs:
        node = params.get(spec.name)
        if node is not None and node.ndim == 3:
            symbols.append(shaped_symbol(spec.name, node.shape))
            sequences[spec.name] = tuple(node.shape)
        else:
            symbols.append(spec.symbol)
    return Equations(equations, symbols, ps.dims, display, latex_names, sequences)


#: Ops of a scan: a scan is a loop block, its outputs the names the loop defines.
_LOOP_OPS = frozenset({"scan", "scan_output"})


def _scan_ancestors(order: list[Node]) -> set[int]:
    """Ids of the nodes some scan node depends on (the scans included)."""
    out: set[int] = set()
    for n in reversed(order):
        if n.op.name == "scan" or id(n) in out:
            out.add(id(n))
            out.update(id(i) for i in n.inputs)
    return out


def _loop(block: LoopBlock, section: str) -> Loop:
    body = tuple(Equation(a.symbol, a.expr, section, a.node) for a in block.body)
    return Loop(
        index=block.index,
        length=block.length,
        reverse=block.reverse,
        sequences=block.sequences,
        carries=block.carries,
        starts=block.starts,
        body=body,
        outputs=block.outputs,
        section=section,
        node=block.node,
    )


#: Prefix of provisional t-names (not a character a SymPy symbol name is likely to start with).
_TMP = "\x00t"


def _number_t_names(equations: list[Equation], unique: Callable[[str], str]) -> list[Equation]:
    """Give the provisional t-names their final numbers, t1, t2, ... in reading order."""
    renames: dict[sp.Basic, sp.Basic] = {}
    for e in equations:
        if not isinstance(e, Loop) and e.name.startswith(_TMP):
            name = unique(f"t{len(renames) + 1}")
            shape = e.symbol.shape if isinstance(e.symbol, sp.MatrixSymbol) else ()
            renames[e.symbol] = shaped_symbol(name, shape)
    if not renames:
        return equations
    return [
        e.rename(renames)
        if isinstance(e, Loop)
        else Equation(
            renames.get(e.symbol, e.symbol), replace_exact(e.expr, renames), e.section, e.node
        )
        for e in equations
    ]


def gradient_equations(f: Compiled | ProgramSet) -> Equations:
    """The backward pass symgrad derived, raised to SymPy as named equations.

    The equations are those of the optimised ``value_and_grad`` program (exactly what the
    compiled code computes): the forward intermediates it keeps, ``L``, then the δs and the
    gradients ``dL/dW`` (the gradient of the sum of ``L`` for a matrix-valued ``L``). See the
    module docstring for the naming rule.

    Parameters
    ----------
    f : Compiled or ProgramSet
        A function from :func:`symgrad.compile` (or its ``programs``).

    Returns
    -------
    Equations
        Ordered ``(symbol, expr)`` pairs; ``.forward`` and ``.backward`` split them.

    Examples
    --------
    >>> import sympy as sp, symgrad as sg
    >>> from symgrad.explain import gradient_equations
    >>> w, x, b = sp.symbols("w x b")
    >>> f = sg.compile(sp.tanh(w * x + b), wrt=[w, b])
    >>> eqs = gradient_equations(f)
    >>> print(eqs)
    L = tanh(b + w*x)
    δ1 = 1 - L**2
    ∂L/∂w = x*δ1
    ∂L/∂b = δ1
    >>> eqs["dL/dw"]
    x*δ1
    """
    ps = _program_set(f)
    return _build(ps, _program(ps, "value_and_grad"), with_grads=True)


def forward_equations(f: Compiled | ProgramSet) -> Equations:
    """The forward pass (the optimised ``value`` program) as named equations.

    Layer outputs (activations feeding a matrix product or another activation) and shared
    intermediates are named; see the module docstring.

    Examples
    --------
    >>> import sympy as sp, symgrad as sg
    >>> from symgrad.explain import forward_equations
    >>> x = sp.Symbol("x")
    >>> print(forward_equations(sg.compile(sp.sin(sp.sin(x)), wrt=[x])))
    h1 = sin(x)
    L = sin(h1)
    """
    ps = _program_set(f)
    return _build(ps, _program(ps, "value"), with_grads=False)


def explain(f: Compiled | ProgramSet) -> str:
    """The forward and backward equations of a compiled function, one per line.

    Parameters
    ----------
    f : Compiled or ProgramSet
        A function from :func:`symgrad.compile`.

    Returns
    -------
    str
        A ``forward pass:`` block and a ``backward pass:`` block (see :func:`gradient_equations`).

    Examples
    --------
    >>> import sympy as sp, symgrad as sg
    >>> from symgrad.explain import explain
    >>> w, x, b = sp.symbols("w x b")
    >>> print(explain(sg.compile(sp.tanh(w * x + b), wrt=[w, b])))
    forward pass:
      L = tanh(b + w*x)
    backward pass:
      δ1 = 1 - L**2
      ∂L/∂w = x*δ1
      ∂L/∂b = δ1
    """
    eqs = gradient_equations(f)
    parts = []
    for title, part in (("forward pass:", eqs.forward), ("backward pass:", eqs.backward)):
        parts.append(title)
        parts.extend(f"  {line}" for line in part.lines())
    return "\n".join(parts)
