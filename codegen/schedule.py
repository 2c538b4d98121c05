"""Scheduling: fuse elementwise nodes into loop groups and order the units to emit.

A *unit* is either one non-elementwise node, one scalar (0-d) elementwise node, or a group of
elementwise nodes of one shape computed in one loop nest with no temporaries. A group may have
several outputs (e.g. a value and its gradients computed in the same loop). Groups never contain
a node reached through a node outside the group, so the units form a DAG.

Fusion lives here rather than among the graph passes because a multi-output loop is not an IR
value: it is a decision about how to emit a graph, not a new graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.node import Node, consumers, toposort
from ..ir.ops_elementwise import ElementwiseOp
from ..ir.ops_source import const_op


def is_loop_elementwise(node: Node) -> bool:
    return isinstance(node.op, ElementwiseOp) and node.ndim > 0


@dataclass
class Unit:
    nodes: list[Node]
    is_group: bool
    #: members whose values are needed outside the loop (materialised as arrays)
    outputs: list[Node] = field(default_factory=list)


def schedule(outputs: list[Node], keep: set[int] | None = None, leaves=()) -> list[Unit]:
    """Units covering every node needed for ``outputs``, in a valid emission order.

    ``keep`` holds ids of extra nodes that must be materialised (e.g. tape entries); ``leaves``
    are nodes already available (parameters) whose inputs are not scheduled.
    """
    order = toposort(outputs, stop=leaves)
    leaf_ids = {id(n) for n in leaves}
    position = {id(n): k for k, n in enumerate(order)}
    users = consumers([n for n in order if id(n) not in leaf_ids])
    needed = {id(o) for o in outputs} | (keep or set())

    # Successor lists over positions, for the cycle test of group merges.
    succ: list[list[int]] = [[] for _ in order]
    for k, n in enumerate(order):
        if id(n) in leaf_ids:
            continue
        for i in n.inputs:
            succ[position[id(i)]].append(k)

    group_of: dict[int, int] = {}
    groups: dict[int, set[int]] = {}

    def valid(members: set[int]) -> bool:
        """No path leaves ``members`` and comes back, treating existing groups as one unit."""
        stack = [c for m in members for c in succ[m] if c not in members]
        seen: set[int] = set()
        while stack:
            k = stack.pop()
            if k in seen:
                continue
            gid = group_of.get(k)
            unit = groups[gid] if gid is not None else (k,)
            for mem in unit:
                seen.add(mem)
                for c in succ[mem]:
                    if c in members:
                        return False
                    if c not in seen:
                        stack.append(c)
        return True

    next_gid = 0
    for k, n in enumerate(order):
        if not is_loop_elementwise(n) or id(n) in leaf_ids:
            continue
        members = {k}
        for i in n.inputs:
            if not is_loop_elementwise(i) or i.shape != n.shape or id(i) in leaf_ids:
                continue
            gid = group_of.get(position[id(i)])
            if gid is None or groups[gid] <= members:
                continue
            trial = members | groups[gid]
            if valid(trial):
                members = trial
        gid = next_gid
        next_gid += 1
        for m in members:
            old = group_of.get(m)
            if old is not None and old in groups:
                del groups[old]
            group_of[m] = gid
        groups[gid] = members

    # Build units.
    units: list[Unit] = []
    unit_of: dict[int, int] = {}
    seen_groups: dict[int, int] = {}
    for k, n in enumerate(order):
        if id(n) in leaf_ids:
            continue
        if n.op is const_op and id(n) not in needed:
            # Constants are literals wherever an elementwise kernel reads them; others
            # materialise them on demand.
            if all(isinstance(u.op, ElementwiseOp) for u in users.get(id(n), ())):
                continue
        gid = group_of.get(k)
        if gid is None:
            unit_of[k] = len(units)
            units.append(Unit([n], False))
            continue
        if gid not in seen_groups:
            seen_groups[gid] = len(units)
            units.append(Unit([], True))
        u = seen_groups[gid]
        unit_of[k] = u
        units[u].nodes.append(n)

    # Group outputs: members used outside the group or required by the caller.
    for unit in units:
        if not unit.is_group:
            continue
        ids = {id(m) for m in unit.nodes}
        for m in unit.nodes:
            if id(m) in needed or any(id(u) not in ids for u in users.get(id(m), ())):
                unit.outputs.append(m)

    # Topological order of units (Kahn), ties broken by first appearance.
    deps: list[set[int]] = [set() for _ in units]
    for ui, unit in enumerate(units):
        for m in unit.nodes:
            for i in m.inputs:
                if id(i) not in position:
                    continue
                uj = unit_of.get(position[id(i)])
                if uj is not None and uj != ui:
                    deps[ui].add(uj)
    done: set[int] = set()
    result: list[Unit] = []
    remaining = list(range(len(units)))
    while remaining:
        for idx, ui in enumerate(remaining):
            if deps[ui] <= done:
                result.append(units[ui])
                done.add(ui)
                del remaining[idx]
                break
        else:  # pragma: no cover - guarded by valid()
            raise RuntimeError("internal: cyclic fusion groups")
    return result
