"""A program: one function to emit — its parameters, its result structure and its tape."""

from __future__ import annotations

from dataclasses import dataclass, field

from .node import Node


@dataclass
class Program:
    """One generated function.

    Attributes
    ----------
    name
        Function name in the generated module (``value``, ``value_and_grad``, ...).
    params
        Input nodes in positional order.
    result
        A node or nested tuple of nodes: the return value's structure.
    keep
        Extra nodes to materialise (tape entries returned by a forward function).
    inplace
        ``(param, value)`` pairs: after computing everything, write ``value`` into the array
        passed for ``param`` (a training step updating parameters and optimiser state).
    """

    name: str
    params: list[Node]
    result: object
    keep: list[Node] = field(default_factory=list)
    inplace: list[tuple[Node, Node]] = field(default_factory=list)


def flatten(result) -> list[Node]:
    out: list[Node] = []

    def walk(r):
        if isinstance(r, (tuple, list)):
            for x in r:
                walk(x)
        else:
            out.append(r)

    walk(result)
    return out


def unflatten(template, flat: list[Node]):
    it = iter(flat)

    def walk(r):
        if isinstance(r, (tuple, list)):
            return tuple(walk(x) for x in r)
        return next(it)

    return walk(template)
