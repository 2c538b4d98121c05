"""The rewrite driver shared by the passes: rebuild a graph bottom-up applying a rule."""

from __future__ import annotations

from collections.abc import Callable

from ...ir.node import Node, make, toposort

Rule = Callable[[Node], "Node | None"]


def rewrite(outputs: list[Node], rule: Rule, max_steps: int = 20) -> list[Node]:
    """Rebuild ``outputs`` bottom-up, replacing each node by ``rule(node)`` until it returns None.

    Because nodes are hash-consed, the rebuilt graph shares every unchanged node with the input
    graph and equal subexpressions created by a rewrite merge (CSE comes for free).
    """
    new: dict[int, Node] = {}
    for node in toposort(outputs):
        inputs = tuple(new[id(i)] for i in node.inputs)
        current = node if inputs == node.inputs else make(node.op, inputs, node.attrs)
        for _ in range(max_steps):
            replacement = rule(current)
            if replacement is None or replacement is current:
                break
            current = replacement
        new[id(node)] = current
    return [new[id(o)] for o in outputs]


def chain(*rules: Rule) -> Rule:
    """A rule trying each of ``rules`` in turn."""

    def combined(node: Node) -> Node | None:
        for rule in rules:
            out = rule(node)
            if out is not None and out is not node:
                return out
        return None

    return combined
