"""The per-object fast path of ``Compiled.value_and_grad`` for all-float scalar calls.

A scalar model is often called millions of times with Python floats, where the wrapper, not the
arithmetic, is the cost: a ``**kwargs`` call plus a lookup per input costs about as much as the
generated twin itself. So for inputs whose names are plain identifiers the fast path is a small
generated function whose parameters *are* the inputs: CPython binds the keywords (or positions)
itself, one ``type(v) is float`` test per input picks the twin, whose body is inlined (its
``argK`` parameters renamed to the inputs) to save a Python call, and every other call shape (a
dict, arrays, ``seed=``, a missing or unknown name) goes to the general method with the
arguments it was given.
"""

from __future__ import annotations

import ast
import inspect
import keyword
import math
import operator
import textwrap
from collections.abc import Callable, Mapping, Sequence

#: Names the generated wrapper itself uses; inputs named like these use the closure.
_RESERVED = {
    "seed",
    "args",
    "kwargs",
    "type",
    "float",
    "ArithmeticError",
    "ValueError",
    "value_and_grad",
}


class _Missing:
    """Default of the generated wrapper's parameters: "not passed"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


def _plain_names(names: Sequence[str]) -> bool:
    def plain(name: str) -> bool:
        return name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")

    return all(plain(n) and n not in _RESERVED for n in names)


def make_fast_value_and_grad(
    names: Sequence[str],
    twin: Callable | None,
    numba_fn: Callable,
    general: Callable,
) -> Callable:
    """A ``value_and_grad(...)`` that runs ``twin`` for all-float calls and ``general`` otherwise.

    Parameters
    ----------
    names : sequence of str
        The input names in positional order.
    twin : callable or None
        The plain-Python ``py_value_and_grad`` of the generated module (None: use ``numba_fn``).
    numba_fn : callable
        The Numba ``value_and_grad``; also the answer when the twin raises where Numba returns
        inf or nan (CPython's ``math`` raises on overflow and domain errors).
    general : callable
        The full method: dicts, arrays, ``seed=``, checks and named errors.

    Examples
    --------
    >>> f = make_fast_value_and_grad(["x"], lambda x: (x, (1.0,)), None, lambda *a, **k: "general")
    >>> f(x=2.0), f(2.0), f(x=2), f({"x": 2.0})
    ((2.0, (1.0,)), (2.0, (1.0,)), 'general', 'general')
    """
    if _plain_names(names):
        return _generated_wrapper(list(names), twin, numba_fn, general, _inlined_body(twin, names))
    return _closure_wrapper(list(names), twin, numba_fn, general)


def _inlined_body(twin: Callable | None, names: Sequence[str]) -> str | None:
    """The twin's body with ``argK`` renamed to ``names[K]``, indented for the wrapper.

    None when there is no twin, its source is unavailable, or an input name already occurs in
    the body (it would capture a local or a global there): the wrapper then calls the twin.
    """
    if twin is None:
        return None
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(twin)))
    except (OSError, TypeError, SyntaxError):
        return None
    (function,) = tree.body
    params = [a.arg for a in function.args.args]
    if len(params) != len(names):
        return None
    rename = dict(zip(params, names))
    used = {node.id for node in ast.walk(function) if isinstance(node, ast.Name)}
    if used & (set(names) - set(params)):
        return None
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and node.id in rename:
            node.id = rename[node.id]
    function = _MathAsGlobals().visit(function)
    body = "\n".join(ast.unparse(statement) for statement in function.body)
    return "\n".join(" " * 12 + line for line in body.splitlines())


class _MathAsGlobals(ast.NodeTransformer):
    """``math.exp`` -> ``_math_exp``: one global lookup instead of a global and an attribute."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if isinstance(node.value, ast.Name) and node.value.id == "math":
            return ast.copy_location(ast.Name(f"_math_{node.attr}", node.ctx), node)
        return self.generic_visit(node)


def _generated_wrapper(names, twin, numba_fn, general, body):
    params = ", ".join(f"{n}=_MISSING" for n in names)
    values = ", ".join(names)
    floats = " and ".join(f"type({n}) is float" for n in names)
    if body is None:
        body = " " * 12 + f"return {'_twin' if twin is not None else '_numba'}({values})"
    source = f"""
def value_and_grad({params}, *args, **kwargs):
    if {floats} and not args and not kwargs:
        try:
{body}
        except (ArithmeticError, ValueError):
            return _numba({values})  # CPython raises where Numba gives inf/nan
    return _slow(({values},), args, kwargs)
"""
    # The inlined body reads the generated module's globals (math, constants, helpers).
    namespace = dict(twin.__globals__) if twin is not None else {}
    namespace.update({"_MISSING": MISSING, "_twin": twin, "_numba": numba_fn})
    namespace.update({f"_math_{name}": getattr(math, name) for name in dir(math)})

    def slow(given, args, kwargs):
        # Rebuild a call the general method reads the same way. With every parameter filled,
        # positions are exact (extra positional values are in ``args``). With some missing,
        # nothing was passed positionally after them: keywords name what was given, except
        # the one-dict form, where the dict landed in the first parameter.
        if not any(v is MISSING for v in given):
            return general(*given, *args, **kwargs)
        named = {n: v for n, v in zip(names, given) if v is not MISSING}
        if len(named) == 1 and isinstance(given[0], Mapping):
            return general(given[0], **kwargs)
        return general(**named, **kwargs)

    namespace["_slow"] = slow
    exec(compile(source, "<symgrad fast value_and_grad>", "exec"), namespace)
    return namespace["value_and_grad"]


def _closure_wrapper(names, twin, numba_fn, general):
    """For input names that cannot be parameters: keywords only, read with one itemgetter."""
    count = len(names)
    getter = operator.itemgetter(*names) if count > 1 else None
    first = names[0]

    def value_and_grad(*args, **kwargs):
        if not args and len(kwargs) == count:
            try:
                vals = getter(kwargs) if getter is not None else (kwargs[first],)
            except KeyError:
                return general(*args, **kwargs)
            for v in vals:
                if type(v) is not float:
                    return general(*args, **kwargs)
            if twin is not None:
                try:
                    return twin(*vals)
                except (ArithmeticError, ValueError):
                    pass  # CPython raises where Numba gives inf/nan: use Numba
            return numba_fn(*vals)
        return general(*args, **kwargs)

    return value_and_grad
