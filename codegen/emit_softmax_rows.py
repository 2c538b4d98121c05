"""One loop nest for each fused row op of :mod:`symgrad.ir.ops_softmax_rows`.

Per row (every index of the leading axes): a pass for the maximum ``m`` (0 where it is infinite,
as :class:`~symgrad.ir.ops_nn.MaxShiftOp` does; ``fast_max``, so that this pass vectorises too),
a pass summing ``exp(x - m)``, and for the log-softmax and softmax a pass writing the row. The
softmax stores ``exp(x - m)`` during the sum and divides it in place, so each element costs one
``exp``. The rows are short and stay in L1 between passes; each pass is a plain loop over the
last axis that LLVM vectorises (the fast ``exp``/``log`` kernels are inlined).
"""

from __future__ import annotations

from .emit_structural import emitter


def _max_and_sum(em, src: str, idx: list[str], width: str, indent: int, store: str | None):
    """Emit the max pass and the exp-sum pass; return the names of ``m`` and ``s``.

    With ``store``, ``exp(x - m)`` is also written to ``store`` (the softmax output).
    """
    m, s, r = em.fresh("m"), em.fresh("s"), em.fresh("r")
    at = ", ".join([*idx, r])
    em.emit(f"{m} = {em.number(float('-inf'))}", indent)
    em.emit(f"for {r} in range({width}):", indent)
    em.emit(f"{m} = fast_max({m}, {src}[{at}])", indent + 1)
    em.emit(f"if math.isinf({m}):", indent)
    em.emit(f"{m} = {em.number(0)}", indent + 1)
    em.emit(f"{s} = {em.number(0)}", indent)
    em.emit(f"for {r} in range({width}):", indent)
    if store is None:
        em.emit(f"{s} += fast_exp({src}[{at}] - {m})", indent + 1)
    else:
        e = em.fresh("e")
        em.emit(f"{e} = fast_exp({src}[{at}] - {m})", indent + 1)
        em.emit(f"{store}[{at}] = {e}", indent + 1)
        em.emit(f"{s} += {e}", indent + 1)
    return m, s, r


def _emit_row_op(em, node, name, kind: str) -> None:
    (x,) = node.inputs
    src = em.name(x)
    width = em.dim(x.shape[-1])
    em.emit(f"{name} = np.empty({em.shape(node.shape)}, dtype=_F)")
    idx, indent = em.open_loops(x.shape[:-1])
    store = name if kind == "softmax" else None
    m, s, r = _max_and_sum(em, src, idx, width, indent, store)
    at = ", ".join([*idx, r])
    if kind == "logsumexp":
        em.emit(f"{name}[{', '.join([*idx, '0'])}] = {m} + fast_log({s})", indent)
        return
    if kind == "log_softmax":
        log_s = em.fresh("ls")
        em.emit(f"{log_s} = fast_log({s})", indent)
        em.emit(f"for {r} in range({width}):", indent)
        em.emit(f"{name}[{at}] = ({src}[{at}] - {m}) - {log_s}", indent + 1)
    else:
        em.emit(f"for {r} in range({width}):", indent)
        em.emit(f"{name}[{at}] = {name}[{at}] / {s}", indent + 1)


@emitter("row_logsumexp")
def emit_row_logsumexp(em, node, name):
    """``m + log(sum(exp(x - m)))`` per row, written to the row's single column."""
    _emit_row_op(em, node, name, "logsumexp")


@emitter("row_log_softmax")
def emit_row_log_softmax(em, node, name):
    """``(x - m) - log(sum(exp(x - m)))`` per row."""
    _emit_row_op(em, node, name, "log_softmax")


@emitter("row_softmax")
def emit_row_softmax(em, node, name):
    """``exp(x - m) / sum(exp(x - m))`` per row, one ``exp`` per element."""
    _emit_row_op(em, node, name, "softmax")
