"""The common case of ``Compiled._prepare`` as one generated function, checks spelled out.

Why: a training step of a few microseconds (fastText at batch 1: ~1.5 µs) spent ~20 µs in the
general argument handling of ``step(dict)``: a conversion call per input, a loop over every axis
of every input to bind the symbolic dimensions, a NumPy ``max`` per index input. The inputs and
their shapes are known when the graph is compiled, so the checks can be written out as straight
code once: for this step ``Compiled._prepare`` drops from ~20 to ~6 µs.

The generated function takes the values in positional order and returns them ready for the
generated code, or None when anything is unusual (another dtype, a non-contiguous or read-only
array where one is updated in place, a Python int for a float, a mismatched shape, an id past its
table, an array for a scalar symbol). None sends the call to the general path, which converts
what it can and raises the named error otherwise, so behaviour is the general path's in every
case; only the time differs. Graphs with dimensions given as expressions (``n + 1``) get no fast
path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: Index inputs up to this many ids are range-checked with ``max(ids.ravel().tolist())``: below
#: it that is faster than NumPy's ``ids.max()`` (a ufunc reduction costs ~1.5 µs to start).
SMALL_IDS = 128


def make_fast_prepare(
    names: Sequence[str],
    codes: Sequence[tuple],
    is_matrix: Sequence[bool],
    index_inputs: set[str],
    inplace: set[int],
    np_dtype: np.dtype,
    scalar: Callable,
    index_bounds: list,
    symbols: Sequence,
) -> Callable | None:
    """A function ``values -> list | None``: the prepared inputs, or None for the general path.

    Parameters
    ----------
    names : sequence of str
        Input names in positional order.
    codes : sequence of tuple
        Per input, per axis: ``(True, size)`` for a fixed size, ``(False, j)`` for the symbolic
        dimension ``symbols[j]`` (``j == -1``: an expression).
    is_matrix : sequence of bool
        Which inputs are arrays (the others are scalars).
    index_inputs : set of str
        Names of the integer (row id) inputs.
    inplace : set of int
        Positions of inputs updated in place (must be writeable).
    np_dtype : numpy.dtype
        The float dtype of the generated code.
    scalar : callable
        Converts a Python float to the generated code's scalar type.
    index_bounds : list
        ``(position, name, [(rows, label), ...])``: each index input's ids must be below
        ``rows`` (an int or a symbol of ``symbols``).
    symbols : sequence
        The symbolic dimensions the codes refer to.

    Returns
    -------
    callable or None
        None when the inputs need checks this fast path does not spell out.

    Examples
    --------
    >>> import numpy as np, sympy as sp
    >>> n = sp.Symbol("n")
    >>> prepare = make_fast_prepare(["X", "c"], [((False, 0), (True, 3)), ()], [True, False],
    ...                             set(), set(), np.dtype("float64"), float, [], [n])
    >>> len(prepare([np.zeros((5, 3)), 2.0]))
    2
    >>> prepare([np.zeros((5, 4)), 2.0]) is None     # wrong width: the general path explains
    True
    """
    if not names:
        return None  # nothing to check
    position_of = {}
    lines = []
    params = [f"a{k}" for k in range(len(names))]
    lines.append(f"    {', '.join(params)}{',' if len(params) == 1 else ''} = given")
    for k, name in enumerate(names):
        a = params[k]
        if not is_matrix[k]:
            if name in index_inputs:
                return None
            lines.append(f"    if type({a}) is not float:")
            lines.append("        return None")
            lines.append(f"    {a} = _scalar({a})")
            continue
        if any(not fixed and want < 0 for fixed, want in codes[k]) or not codes[k]:
            return None
        dtype = "_I64" if name in index_inputs else "_F"
        lines.append(
            f"    if type({a}) is not _ndarray or {a}.dtype is not {dtype} "
            f"or {a}.ndim != {len(codes[k])}:"
        )
        lines.append("        return None")
        flags = f"{a}.flags"
        if k in inplace:
            lines.append(f"    f = {flags}")
            lines.append("    if not (f.c_contiguous and f.writeable):")
        else:
            lines.append(f"    if not {flags}.c_contiguous:")
        lines.append("        return None")
        axes = [f"{a}_{axis}" for axis in range(len(codes[k]))]
        lines.append(f"    {', '.join(axes)}{',' if len(axes) == 1 else ''} = {a}.shape")
        for axis, (fixed, want) in enumerate(codes[k]):
            size = axes[axis]
            if fixed:
                lines.append(f"    if {size} != {want}:")
                lines.append("        return None")
            elif want in position_of:
                lines.append(f"    if {size} != {position_of[want]}:")
                lines.append("        return None")
            else:
                position_of[want] = size
    symbol_index = {s: j for j, s in enumerate(symbols)}
    for k, _name, bounds in index_bounds:
        a = params[k]
        limits = []
        for rows, _label in bounds:
            if isinstance(rows, int):
                limits.append(str(rows))
            elif symbol_index.get(rows) in position_of:
                limits.append(position_of[symbol_index[rows]])
            else:
                return None  # an expression of the dimensions: the general path evaluates it
        lines.append(f"    if {a}.size:")
        small = f"{a}.size <= {SMALL_IDS}"
        lines.append(f"        top = max({a}.ravel().tolist()) if {small} else int({a}.max())")
        for limit in limits:
            lines.append(f"        if top >= {limit}:")
            lines.append("            return None")
    lines.append(f"    return [{', '.join(params)}]")
    source = "def fast_prepare(given):\n" + "\n".join(lines) + "\n"
    namespace = {"_ndarray": np.ndarray, "_F": np_dtype, "_I64": np.dtype(np.int64),
                 "_scalar": scalar}  # fmt: skip
    exec(compile(source, "<symgrad fast prepare>", "exec"), namespace)
    function = namespace["fast_prepare"]
    function.source = source
    return function
