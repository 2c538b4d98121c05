"""Per-step buffers of a scan loop, allocated once before the loop.

The emitters of a body's units allocate each value they produce with ``np.empty`` (a
reduction then fills it with 0, a matrix product writes into it with ``out=``). Inside a scan
that would be one heap allocation per value per step. After each unit is emitted, its
allocation line is recognised by its exact text (each emitter names node ``k`` ``t<k>``) and
moved in front of the loop; the lines writing into the buffer stay in the loop. A line that does
not match stays as it was (correct, just allocating); ``tests/test_scan_hoist.py`` checks that
RNN loops allocate nothing.

Copies are explicit element loops: Numba compiles an array slice assignment (``buf[t] = v``)
together with a shape-mismatch error path that costs about a second of compile time each.
"""

from __future__ import annotations


def copy_lines(em, dst: str, src: str, shape, prefix: str = "", indent: int = 1) -> None:
    """``dst[prefix, ...] = src[...]`` as a loop nest over ``shape``."""
    _loop(em, dst, src, shape, prefix, "=", indent)


def add_lines(em, dst: str, src: str, shape, indent: int = 1) -> None:
    """``dst += src`` as a loop nest over ``shape``."""
    _loop(em, dst, src, shape, "", "+=", indent)


def _loop(em, dst, src, shape, prefix, op, indent):
    if not shape:
        target = f"{dst}[{prefix}]" if prefix else dst
        em.emit(f"{target} {op} {src}", indent)
        return
    idx, inner = em.open_loops(shape, indent)
    head = [prefix] if prefix else []
    em.emit(f"{dst}[{', '.join(head + idx)}] {op} {src}[{', '.join(idx)}]", inner)


class LoopBuffers:
    """Collects allocations to move before a loop whose header is line ``loop_line``.

    ``targets`` maps a node's id to an array expression its values may be written into directly
    (a stack slice ``stack[t]`` or a carry's spare buffer): a unit producing such a node writes
    there instead of into a buffer of its own, and ``redirected`` records where, so that no copy
    loop is needed after the body (less work per step and less code to compile).
    """

    def __init__(self, em, loop_line: int, targets: dict | None = None):
        self.em = em
        self.loop_line = loop_line
        self.hoisted: list[str] = []
        self.targets = dict(targets or {})
        self.redirected: dict[int, str] = {}

    def emit_unit(self, unit, emit) -> None:
        """Run ``emit()`` (which emits ``unit``) and move its allocations out of the loop."""
        em = self.em
        start = len(em.lines)
        emit()
        pad = "    " * (1 + em.base)
        outer = "    " * (1 + em.base - 1)
        for node in unit.nodes:
            if not node.ndim:
                continue
            name = f"t{node.uid}"
            shape = em.shape(node.shape)
            empty = f"{pad}{name} = np.empty({shape}, dtype=_F)"
            target = self.targets.get(id(node))
            for k in range(start, len(em.lines)):
                if em.lines[k] != empty:
                    continue
                if target is None:
                    em.lines[k] = None
                    self.hoisted.append(f"{outer}{name} = np.empty({shape}, dtype=_F)")
                else:
                    em.lines[k] = f"{pad}{name} = {target}"
                    self.redirected[id(node)] = target
                    del self.targets[id(node)]
                break
        em.lines[start:] = [line for line in em.lines[start:] if line is not None]

    def finish(self) -> None:
        """Insert the collected allocations in front of the loop header."""
        em = self.em
        em.lines[self.loop_line : self.loop_line] = self.hoisted
