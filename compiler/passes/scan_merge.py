"""Run a scan and its extension once: the VJP of a scan builds an extended copy of it (the same
body and inputs, stacking more per-step values for the reverse loop); when a graph holds both,
every output of the plain scan is read from the extended one instead, so one forward loop runs.
"""

from __future__ import annotations

from ...ir.node import Node, make, substitute, toposort
from ...ir.ops_scan import ScanOp, scan_output


def merge_scans(outputs: list[Node]) -> list[Node]:
    """``outputs`` with each plain scan replaced by its extension where both are present."""
    order = toposort(outputs)
    present = {id(n) for n in order}
    mapping: dict[int, Node] = {}
    for n in order:
        op = n.op
        if not isinstance(op, ScanOp) or op.extends is None:
            continue
        plain = make(op.extends, n.inputs)
        if id(plain) not in present:
            continue
        for k in range(op.extends.n_outputs):
            old = scan_output(plain, k)
            if id(old) in present and id(old) not in mapping:
                mapping[id(old)] = scan_output(n, k)
    if not mapping:
        return outputs
    return substitute(outputs, mapping)
