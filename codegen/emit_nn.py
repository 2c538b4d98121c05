"""Numba spellings of the ``symgrad.nn`` vocabulary: the max-shift kernel and scalar printers.

The emitter ``max_shift`` registers itself (ops are known by name). The scalar printers are plain
functions ``(printer, expr) -> str``; ``symgrad.nn`` binds them to its SymPy classes with
:func:`~symgrad.codegen.printer.register_printer` (codegen may not import the top-level package).

Every printer is stable for large ``|x|``: exponentials only ever see non-positive values, so
nothing overflows and small results keep their relative accuracy. A printed argument may be
repeated, which is cheap because arguments are loop variables or simple subexpressions, and LLVM
merges the repeated pure calls.
"""

from __future__ import annotations

from .emit_structural import emitter


def _arg(p, expr, k: int = 0) -> str:
    return f"({p.print(expr.args[k])})"


def print_sigmoid(p, expr) -> str:
    """The vectorisable kernel: exact saturation, no overflow, no cancellation."""
    return f"fast_sigmoid{_arg(p, expr)}"


def print_softplus(p, expr) -> str:
    """``log(1 + e^x)``: exactly ``x`` for large ``x``, ``~e^x`` far below."""
    return f"fast_softplus{_arg(p, expr)}"


def print_log_sigmoid(p, expr) -> str:
    """``-softplus(-x)``."""
    return f"(-fast_softplus(-{_arg(p, expr)}))"


def print_relu(p, expr) -> str:
    return f"max({_arg(p, expr)}, {p.number(0)})"


def print_leaky_relu(p, expr) -> str:
    """``x`` above 0, ``alpha*x`` at and below 0 (also used for ``prelu``)."""
    x, alpha = _arg(p, expr, 0), _arg(p, expr, 1)
    return f"({x} if {x} > {p.number(0)} else {alpha} * {x})"


def print_hard_tanh(p, expr) -> str:
    return f"min(max({_arg(p, expr)}, {p.number(-1)}), {p.number(1)})"


def print_xlogy(p, expr) -> str:
    """``x*log(y)`` with ``0*log(y) = 0`` (log is not evaluated then, so ``y = 0`` is fine)."""
    x, y = _arg(p, expr, 0), _arg(p, expr, 1)
    return f"({p.number(0)} if {x} == {p.number(0)} else {x} * math.log({y}))"


#: Printer functions by the ``__name__`` of the SymPy class they print.
PRINTERS = {
    "sigmoid": print_sigmoid,
    "softplus": print_softplus,
    "log_sigmoid": print_log_sigmoid,
    "relu": print_relu,
    "leaky_relu": print_leaky_relu,
    "prelu": print_leaky_relu,
    "hard_tanh": print_hard_tanh,
    "xlogy": print_xlogy,
}


@emitter("max_shift")
def emit_max_shift(em, node, name):
    """The maximum along the reduced axes (0 where it is infinite), one pass per output element.

    Loops run over the kept axes outside and the reduced axes inside, with a scalar accumulator.
    ``fast_max`` skips a NaN, so a NaN never becomes the shift (it propagates through the sum of
    the formula that uses the shift instead), and lets LLVM vectorise the pass.
    """
    (x,) = node.inputs
    axes = node.attr("axes")
    src = em.name(x)
    idx = [""] * x.ndim
    em.emit(f"{name} = np.empty({em.shape(node.shape)}, dtype=_F)")
    indent = 1
    for k in range(x.ndim):
        if k not in axes:
            idx[k] = em.fresh("i")
            em.emit(f"for {idx[k]} in range({em.dim(x.shape[k])}):", indent)
            indent += 1
    m = em.fresh("m")
    em.emit(f"{m} = {em.number(float('-inf'))}", indent)
    inner = indent
    for k in axes:
        idx[k] = em.fresh("r")
        em.emit(f"for {idx[k]} in range({em.dim(x.shape[k])}):", inner)
        inner += 1
    em.emit(f"{m} = fast_max({m}, {src}[{', '.join(idx)}])", inner)
    em.emit(f"if math.isinf({m}):", indent)
    em.emit(f"{m} = {em.number(0)}", indent + 1)
    out = ["0" if k in axes else idx[k] for k in range(x.ndim)]
    em.emit(f"{name}[{', '.join(out)}] = {m}", indent)
