"""Graph rewrite passes: constant folding, simplification, stabilisation (CSE is hash-consing;
dead code never survives because graphs are rebuilt from their outputs)."""

from __future__ import annotations

from ...ir.node import Node
from .canonical import canonical_order
from .fold import drop_implicit_broadcast, fold_elementwise, fold_structural
from .rewrite import chain, rewrite
from .scan_merge import merge_scans
from .stabilize import stabilize
from .stabilize_nn import stabilize_nn as stabilize_nn_rule  # the module keeps its own name
from .transpose import pull_transpose

DEFAULT_RULE = chain(
    fold_elementwise,
    fold_structural,
    stabilize,
    stabilize_nn_rule,  # after stabilize, which turns log(1 + t) into log1p(t) first
    drop_implicit_broadcast,
    pull_transpose,
    canonical_order,
)


def optimize(outputs: list[Node]) -> list[Node]:
    """Run the default rewrite rules to a fixed point (a few sweeps at most)."""
    for _ in range(4):
        new = rewrite(outputs, DEFAULT_RULE)
        if all(a is b for a, b in zip(new, outputs)):
            break
        outputs = new
    return merge_scans(outputs)


__all__ = ["optimize", "rewrite", "chain"]
