"""Repeated loop nests of a generated module become one helper function each.

Why: Numba's compile time grows with every loop nest it types, lowers and hands to LLVM (about
0.1-0.2 s each), and generated code repeats nests that differ only in names and sizes: a training
step updates every parameter with the same rule (an LSTM step: 14 identical ``p -= lr * g``
nests), sums every bias gradient the same way, and its value, forward and gradient functions
repeat each other's loops. Written once as ``_loop<k>(arrays..., bounds...)`` and called where
each nest stood, a repeated nest is compiled once (measured on the LSTM step: 14 update nests as
one helper took its cold compile from 12.9 to 10.2 s of CPU time).

What is shared: a ``for`` statement at the top level of a generated function whose text, with
its variables renamed in order of appearance and its ``range`` bounds made parameters, occurs at
least twice in the module. The nest must be self-contained: it may read the function's arrays
and scalars (they become arguments; element writes go to the caller's arrays, which are shared)
but must not assign a name the function defines outside the nest or reads after it (a scalar
accumulator is left in place). Everything else stays as emitted, line for line.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass

#: A nest is shared once it occurs this many times in a module.
MIN_REPEATS = 2
_BUILTINS = set(dir(builtins))


@dataclass
class _Nest:
    """One candidate nest: where it is, its canonical text, and the caller's arguments."""

    body: int  # index of the function source in the module's bodies
    first: int  # first line (0-based, in that source)
    last: int  # last line (inclusive)
    indent: str
    key: str
    canonical: ast.For
    params: list[str]  # the helper's parameter names
    args: list[str]  # the caller's argument expressions, in the same order


def _names(node: ast.AST, ctx: type) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


class _Canonicalise(ast.NodeTransformer):
    """Rename a nest's variables (``a<k>`` free, ``v<k>`` its own) and lift its ``range`` bounds."""

    def __init__(self, bound: set[str], own: set[str]):
        self.bound, self.own = bound, own
        self.renamed: dict[str, str] = {}
        self.params: list[str] = []
        self.args: list[str] = []

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.own:
            new = self.renamed.setdefault(node.id, f"v{len(self.renamed)}")
            return ast.copy_location(ast.Name(new, node.ctx), node)
        if node.id in self.bound:
            return ast.copy_location(ast.Name(self._param(node.id), node.ctx), node)
        return node  # a module global (np, math, _F, a fast kernel, ...)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Name) and node.func.id == "range" and not node.keywords:
            lifted = []
            for arg in node.args:
                if _names(arg, ast.Load) & self.own:
                    lifted.append(self.visit(arg))  # depends on an enclosing loop variable
                else:
                    # One parameter per bound (even equal ones): a 128x128 nest then shares
                    # its helper with a 64x128 one. A constant bound is passed as np.intp(n):
                    # Numba would type a bare literal as Literal[int](n) and compile the
                    # helper once per distinct size.
                    source = ast.unparse(arg)
                    if isinstance(arg, ast.Constant):
                        source = f"np.intp({source})"
                    lifted.append(ast.Name(self._param(source, share=False), ast.Load()))
            return ast.copy_location(ast.Call(node.func, lifted, []), node)
        return self.generic_visit(node)

    def _param(self, source: str, share: bool = True) -> str:
        if share and source in self.args:
            return self.params[self.args.index(source)]
        self.args.append(source)
        self.params.append(f"a{len(self.params)}")
        return self.params[-1]


def _function(source: str) -> ast.FunctionDef | None:
    tree = ast.parse(source)
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    return fns[0] if len(fns) == 1 else None


def _candidates(k: int, source: str) -> list[_Nest]:
    fn = _function(source)
    if fn is None:
        return []
    lines = source.splitlines()
    found = []
    # Names each top-level statement stores and loads, walked once (not once per loop nest).
    stores = [_names(stmt, ast.Store) for stmt in fn.body]
    loads = [_names(stmt, ast.Load) for stmt in fn.body]
    stored_before = [{a.arg for a in fn.args.args}]
    for names in stores:
        stored_before.append(stored_before[-1] | names)
    bound = stored_before[-1]  # the arguments and every name the function assigns
    loaded_after = [set()]
    for names in reversed(loads):
        loaded_after.append(loaded_after[-1] | names)
    loaded_after.reverse()  # loaded_after[pos]: loads of statements pos.. to the end
    for pos, stmt in enumerate(fn.body):
        if not isinstance(stmt, ast.For):
            continue
        own = stores[pos]
        if own & (stored_before[pos] | loaded_after[pos + 1]):
            continue  # it assigns a variable of the function (an accumulator): leave it
        canon = _Canonicalise(bound - own, own)
        tree = canon.visit(ast.parse(ast.unparse(stmt)).body[0])
        line = lines[stmt.lineno - 1]
        found.append(
            _Nest(
                body=k,
                first=stmt.lineno - 1,
                last=stmt.end_lineno - 1,
                indent=line[: len(line) - len(line.lstrip())],
                key=ast.dump(tree),
                canonical=tree,
                params=canon.params,
                args=canon.args,
            )
        )
    return found


def share_repeated_loops(bodies: list[str], decorator: str) -> tuple[list[str], list[str]]:
    """Move loop nests repeated across ``bodies`` (function sources) into helper functions.

    Parameters
    ----------
    bodies
        The sources of a module's generated functions, each a decorator line and one ``def``.
    decorator
        The decorator line for the helpers (the one the functions use).

    Returns
    -------
    tuple of (list of str, list of str)
        The function sources with each repeated nest replaced by a helper call, and the
        helpers' sources (to be defined before the functions).

    Examples
    --------
    >>> body = '''@njit
    ... def f(x, y):
    ...     for i in range(3):
    ...         x[i] = 0.0
    ...     for j in range(4):
    ...         y[j] = 0.0
    ...     return x
    ... '''
    >>> new, helpers = share_repeated_loops([body], "@njit")
    >>> print(new[0])
    @njit
    def f(x, y):
        _loop0(np.intp(3), x)
        _loop0(np.intp(4), y)
        return x
    <BLANKLINE>
    >>> print(helpers[0])
    @njit
    def _loop0(a0, a1):
        for v0 in range(a0):
            a1[v0] = 0.0
    <BLANKLINE>
    """
    nests = [n for k, source in enumerate(bodies) for n in _candidates(k, source)]
    counts: dict[str, int] = {}
    for n in nests:
        counts[n.key] = counts.get(n.key, 0) + 1
    helper_of: dict[str, str] = {}
    helpers: list[str] = []
    for n in nests:
        if counts[n.key] < MIN_REPEATS or n.key in helper_of:
            continue
        name = f"_loop{len(helpers)}"
        helper_of[n.key] = name
        nest = ast.unparse(ast.fix_missing_locations(n.canonical))
        body = "\n".join(f"    {line}" for line in nest.splitlines())
        helpers.append(f"{decorator}\ndef {name}({', '.join(n.params)}):\n{body}\n")
    new_bodies = []
    for k, source in enumerate(bodies):
        lines = source.splitlines()
        for n in sorted((n for n in nests if n.body == k), key=lambda n: -n.first):
            name = helper_of.get(n.key)
            if name is not None:
                lines[n.first : n.last + 1] = [f"{n.indent}{name}({', '.join(n.args)})"]
        new_bodies.append("\n".join(lines) + ("\n" if source.endswith("\n") else ""))
    return new_bodies, helpers
