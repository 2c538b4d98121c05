"""The ``Compiled`` object: argument handling, shape checks and calls into the generated module.

Argument order, shapes and checks are precomputed when the object is built; a call does no SymPy
work and makes exactly one Numba call.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp

from ..ir.errors import InputError, ShapeError, UnsupportedExpressionError
from .fast_call import make_fast_value_and_grad
from .fast_prepare import make_fast_prepare
from .output_pool import OutputPool
from .shape_checks import ShapeChecks, parse_dim, shape_str

if TYPE_CHECKING:  # pragma: no cover
    from .generated_module import GeneratedModule

#: ``Compiled._fast_prepare`` before its first call builds it.
_UNBUILT = object()


class _Functions(dict):
    """Generated functions by name, loaded on first lookup (``GeneratedModule.function``)."""

    def __init__(self, module, names):
        super().__init__()
        self._module = module
        self._names = set(names)

    def __contains__(self, name) -> bool:
        return name in self._names

    def __missing__(self, name: str):
        if name not in self._names and not name.endswith("_into"):
            raise KeyError(name)
        loader = getattr(self._module, "function", None)
        if loader is None:  # a plain module object
            fn = getattr(self._module, name)
        else:
            fn = loader(name, on_exported=lambda dispatcher: self.__setitem__(name, dispatcher))
        self[name] = fn
        return fn

    def get(self, name: str, default=None):
        try:
            return self[name]
        except KeyError:
            return default


class Compiled:
    """A compiled SymPy expression with its value, gradient and JVP functions.

    Built by :func:`symgrad.compile`; see there for an example.

    Attributes
    ----------
    inputs : list
        The input symbols, in positional order (``wrt`` first, then the others by name).
    wrt : list
        The symbols gradients are taken with respect to, in the order gradients are returned.
    source : str
        The generated Numba module source.
    dtype : str
        ``"float64"`` or ``"float32"``.
    """

    def __init__(
        self,
        module: GeneratedModule,
        meta: dict,
        symbols: list | None = None,
        variant_factory: Callable | None = None,
        programs_factory: Callable | None = None,
    ):
        self._module = module
        self.meta = meta
        self.dtype = meta["dtype"]
        self._np_dtype = np.dtype(self.dtype)
        self._scalar = float if self.dtype == "float64" else np.float32
        self._names = [i["name"] for i in meta["inputs"]]
        self._shapes = [tuple(parse_dim(d) for d in i["shape"]) for i in meta["inputs"]]
        self._is_matrix = [bool(i["is_matrix"]) for i in meta["inputs"]]
        self._index_inputs = {i["name"] for i in meta["inputs"] if i.get("kind") == "int"}
        self._index_bounds = [
            (self._names.index(name), name, [(parse_dim(rows), label) for rows, label in b])
            for name, b in meta.get("index_bounds", {}).items()
        ]
        self._shape_checks = ShapeChecks(self._shapes, self._is_matrix)
        self._wrt = list(meta["wrt"])
        self._out_shapes = [tuple(parse_dim(d) for d in s) for s in meta["out_shapes"]]
        self._n_aux = len(self._out_shapes) - 1
        self._variant_factory = variant_factory
        self._programs_factory = programs_factory
        self._programs = None
        self._variants: dict = {}
        self._fast_prepare = _UNBUILT  # built on the first call (subclasses set _inplace first)
        if symbols is None:
            symbols = [_symbol_for(n, s) for n, s in zip(self._names, self._shapes)]
        self.inputs = list(symbols)
        self.wrt = [self.inputs[i] for i in self._wrt]
        self._index = {n: k for k, n in enumerate(self._names)}
        self._n_inputs = len(self._names)
        self._all_inputs = tuple(range(self._n_inputs))
        self._all_scalar = not any(self._is_matrix)
        n = len(self._names)
        #: ``mapping -> tuple`` of every input's value by name, in positional order (KeyError
        #: for a missing one); itemgetter of one name returns the value alone, of none fails.
        if n > 1:
            self._by_name = operator.itemgetter(*self._names)
        elif n == 1:
            self._by_name = lambda mapping, name=self._names[0]: (mapping[name],)
        else:
            self._by_name = lambda mapping: ()
        self._fast = self._all_scalar and self.dtype == "float64" and n > 0
        # Plain-Python twins for all-float scalar calls (see codegen.module.module_source);
        # taking them does not import the Numba module (codegen.generated_module).
        self._py_vg = module.twin("py_value_and_grad") if self._fast else None
        self._py_value = module.twin("py_value") if self._fast else None
        if self._fast:
            # An instance attribute shadows the method: no bound-method creation, and the
            # wrapper's parameters are the inputs themselves (see codegen.fast_call).
            self.value_and_grad = make_fast_value_and_grad(
                self._names,
                self._py_vg,
                self._numba_value_and_grad,
                type(self).value_and_grad.__get__(self),
            )
            self.value_and_grad.__doc__ = Compiled.value_and_grad.__doc__

    @functools.cached_property
    def _fn(self) -> dict:
        """The generated functions by program name, each loaded on first use: its native entry,
        else the Numba function (see ``GeneratedModule.function``)."""
        return _Functions(self._module, self.meta["functions"])

    def _trusted(self, name: str):
        """Generated function ``name`` for callers whose arguments are already converted and
        shape-checked (``_prepare``, ``Step``'s in-place checks, ``BoundStep``): native code
        without the per-call type check (~0.25 us per array), which those arguments pass by
        construction (C-contiguous, the model's dtype, the declared dimensions)."""
        fn = self._fn[name]
        return getattr(fn, "native", fn)

    @functools.cached_property
    def _vg(self):
        return self._trusted("value_and_grad") if "value_and_grad" in self._fn else None

    @functools.cached_property
    def _pools(self) -> dict:
        """``OutputPool`` by program name, for those with an ``_into`` version (points calls)."""
        return {
            name: OutputPool(self._fn, name, count, self._np_dtype)
            for name, count in self.meta.get("into", {}).items()
        }

    def _points_call(self, name: str, length: int, values):
        """Program ``name`` on points inputs ``length`` long, reusing dropped output memory."""
        pool = self._pools.get(name)
        if pool is None:
            return self._fn[name](*values)
        return pool(length, *values)

    def _numba_value_and_grad(self, *values):
        return self._vg(*values)

    @property
    def input_names(self) -> list[str]:
        """Names of all inputs, in the positional order of the generated functions."""
        return list(self._names)

    # -- the graph -----------------------------------------------------------------------------
    @property
    def programs(self):
        """The optimised IR programs (``ProgramSet``) behind this function.

        A function loaded from the cache was never lowered; its programs are rebuilt on first
        access (the same deterministic pipeline gives the same graph).
        """
        if self._programs is None:
            if self._programs_factory is None:
                raise AttributeError("this compiled function does not know its expression")
            self._programs = self._programs_factory()
        return self._programs

    def program(self, name: str = "value_and_grad"):
        """One program: ``value``, ``value_and_grad``, ``forward``, ``backward`` or ``jvp``."""
        for p in self.programs.programs:
            if p.name == name:
                return p
        raise KeyError(f"no program {name!r}; have {[p.name for p in self.programs.programs]}")

    def listing(self, name: str = "value_and_grad") -> str:
        """A readable text listing of one program's graph."""
        from ..ir.printing import listing

        p = self.program(name)
        return listing(p.result, params=p.params)

    def to_dot(self, name: str = "value_and_grad", labels=None) -> str:
        """Graphviz DOT source of one program's graph (see ``symgrad.ir.dot.render``).

        Backward nodes are coloured apart from forward ones; ``labels`` (``{node: name}``, e.g.
        ``sg.gradient_equations(f).labels()``) names them in the drawing.
        """
        from ..ir.dot import backward_nodes, to_dot

        p = self.program(name)
        back = None
        if isinstance(p.result, tuple) and len(p.result) == 2 and name.startswith("value_and"):
            back = backward_nodes(p.result[0], p.result)
        return to_dot(p.result, params=p.params, backward=back, labels=labels)

    # -- generated functions -------------------------------------------------------------------
    @property
    def source(self) -> str:
        """The generated Numba source, as text."""
        return self._module.source_text

    @property
    def forward(self):
        """Numba function ``forward(*inputs) -> (value, tape)`` usable from ``@njit`` code."""
        return self._module.forward

    @property
    def backward(self):
        """Numba function ``backward(*inputs, *tape, seed) -> grads`` usable from ``@njit`` code."""
        return self._module.backward

    # -- argument handling ---------------------------------------------------------------------
    def _collect(self, args, kwargs) -> list:
        if not kwargs and len(args) == 1 and type(args[0]) is dict:
            given = args[0]
            if len(given) == self._n_inputs:
                # Exactly the inputs, by name: one lookup for all of them, and nothing can be
                # unknown or missing. Any other dict (symbol keys, extra or missing names) is
                # read below, where errors name what is wrong.
                try:
                    found = self._by_name(given)
                except KeyError:
                    pass
                else:
                    return list(found)
        if len(args) == 1 and isinstance(args[0], dict):
            mapping = {}
            for k, v in args[0].items():
                mapping[k if isinstance(k, str) else getattr(k, "name", str(k))] = v
            mapping.update(kwargs)
        elif args:
            if len(args) != len(self._names):
                raise InputError(
                    f"expected {len(self._names)} positional inputs ({', '.join(self._names)}), "
                    f"got {len(args)}"
                )
            mapping = dict(zip(self._names, args))
            mapping.update(kwargs)
        else:
            mapping = kwargs
        unknown = [k for k in mapping if k not in self._index]
        if unknown:
            raise InputError(
                f"unknown input {', '.join(map(repr, unknown))}; expected {', '.join(self._names)}"
            )
        missing = [n for n in self._names if n not in mapping]
        if missing:
            raise InputError(f"missing input {', '.join(map(repr, missing))}")
        return [mapping[n] for n in self._names]

    def _convert(self, name: str, value):
        kind = type(value)
        if kind is np.ndarray and value.dtype == self._np_dtype and value.flags.c_contiguous:
            if value.ndim and name not in self._index_inputs:
                return value
        elif kind is float:
            return self._scalar(value)
        if name in self._index_inputs:
            return _convert_ids(name, value)
        if isinstance(value, (float, int)) and not isinstance(value, bool):
            return self._scalar(value)
        try:
            arr = np.asarray(value)
        except Exception as exc:  # pragma: no cover - exotic objects
            raise InputError(f"input {name!r} is not numeric: {exc}") from None
        if arr.dtype.kind not in "biuf":
            raise InputError(
                f"input {name!r} is not numeric: got {type(value).__name__} of dtype {arr.dtype}"
            )
        if arr.ndim == 0:
            return self._scalar(arr)
        return np.ascontiguousarray(arr, dtype=self._np_dtype)

    def _prepare(self, args, kwargs, need_dims: bool = True):
        """Converted values and bound dimensions, or a vectorised variant to use instead.

        Returns ``(values, dims, scalar_arrays)``: ``dims`` maps each dimension symbol to
        ``(size, name of the input it was read from)`` (may be None unless ``need_dims``);
        ``scalar_arrays`` lists the positions of scalar symbols given arrays (a vectorised
        call).
        """
        given = self._collect(args, kwargs)
        fast = self._fast_prepare
        if fast is _UNBUILT:
            fast = self._fast_prepare = self._build_fast_prepare()
        if fast is not None:
            values = fast(given)
            if values is not None:  # the common case, checked in one generated function
                return values, (self._dims_of(values) if need_dims else None), ()
        values = [self._convert(n, v) for n, v in zip(self._names, given)]
        checks = self._shape_checks
        checks.bind(values, self._names)
        scalar_arrays = [k for k in checks.scalar_slots if isinstance(values[k], np.ndarray)]
        dims = self._dims_of(values)
        if checks.expression_dims:
            checks.check_expressions(values, self._names, dims)
        if self._index_bounds:
            self._check_ids(values, dims)
        return values, dims, scalar_arrays

    def _build_fast_prepare(self):
        checks = self._shape_checks
        if checks.expression_dims:
            return None
        return make_fast_prepare(
            self._names,
            checks.codes,
            self._is_matrix,
            self._index_inputs,
            set(getattr(self, "_inplace", ())),
            self._np_dtype,
            self._scalar,
            self._index_bounds,
            checks.symbols,
        )

    def _dims_of(self, values) -> dict:
        """``dims`` as ``_prepare`` returns it, for values whose shapes passed the checks: each
        symbol's size where its first matrix input has it."""
        return {
            symbol: (values[k].shape[axis], self._names[k])
            for symbol, (k, axis) in self._shape_checks.first_use.items()
        }

    def _check_ids(self, values, dims) -> None:
        for k, name, bounds in self._index_bounds:
            ids = values[k]
            if not ids.size:
                continue
            top = int(ids.max())
            for rows, label in bounds:
                if isinstance(rows, int):
                    limit = rows
                elif rows in dims:
                    limit = dims[rows][0]
                else:
                    limit = int(rows.xreplace({s: b[0] for s, b in dims.items()}))
                if top >= limit:
                    raise InputError(
                        f"index input {name!r} holds id {top}, but {label} has only {limit} "
                        f"rows ({rows}); ids must be below {limit} (-1 marks padding)"
                    )

    def _seed(self, seed, dims):
        shape = tuple(
            d if isinstance(d, int) else int(d.xreplace({s: b[0] for s, b in dims.items()}))
            for d in self._out_shapes[0]
        )
        if not shape:
            try:
                return self._scalar(seed)
            except (TypeError, ValueError):
                raise ShapeError(
                    f"seed must be a scalar for a scalar output, got {seed!r}"
                ) from None
        seed = np.asarray(seed, dtype=self._np_dtype)
        try:
            return _owned(np.broadcast_to(seed, shape), self._np_dtype)
        except ValueError:
            raise ShapeError(
                f"seed of shape {shape_str(seed.shape)} does not broadcast to the output shape "
                f"{shape_str(shape)}"
            ) from None

    # -- public calls --------------------------------------------------------------------------
    def _fast_values(self, args, kwargs):
        """Input values if the call is keywords-only with exactly the inputs, all Python floats."""
        if args or len(kwargs) != len(self._names):
            return None
        try:
            vals = self._by_name(kwargs)
        except KeyError:
            return None
        for v in vals:
            if type(v) is not float:
                return None
        return vals

    def __call__(self, *args, **kwargs):
        """Value (a tuple ``(value, aux...)`` when compiled with auxiliary outputs)."""
        if self._fast:
            vals = self._fast_values(args, kwargs)
            if vals is not None:
                if self._py_value is not None:
                    try:
                        return self._py_value(*vals)
                    except (ArithmeticError, ValueError):
                        pass  # CPython raises where Numba gives inf/nan: use Numba
                return self._fn["value"](*vals)
        values, _, vec = self._prepare(args, kwargs, need_dims=False)
        if vec:
            return self._vectorised("value", values, vec)
        return self._fn["value"](*values)

    def value_and_grad(self, *args, **kwargs):
        """``(value, grads)``: ``grads`` is a tuple in ``wrt`` order.

        Pass ``seed=`` for the output cotangent (default ones). An input symbol that is itself
        called ``seed`` must then be passed in the dict form.
        """
        # All-float keyword calls never get here: the closure installed in __init__ (see
        # codegen.fast_call) answers them.
        seed = kwargs.pop("seed", None)
        if seed is None and self._all_scalar and not args and self._variants:
            same = self._same_shape_arrays(kwargs)
            if same is not None:
                # Every input a 1-D contiguous array of one length: straight to the variant.
                variant = self._variants[self._all_inputs]
                return variant._points_call("value_and_grad", same[0].shape[0], same)
        values, dims, vec = self._prepare(args, kwargs, need_dims=seed is not None)
        if vec:
            return self._vectorised("value_and_grad", values, vec, seed)
        if seed is None:
            return self._vg(*values)
        return self._fn["value_and_grad_seed"](*values, self._seed(seed, dims))

    def grad(self, *args, **kwargs):
        """Gradients in ``wrt`` order (a tuple); ``seed=`` as in :meth:`value_and_grad`."""
        return self.value_and_grad(*args, **kwargs)[1]

    def jvp(self, tangents: dict, *args, **kwargs):
        """Forward mode: ``(value, directional derivative)`` along ``tangents``.

        ``tangents`` maps (a subset of) the ``wrt`` symbols or names to arrays shaped like them;
        the others are zero.
        """
        if "jvp" not in self._fn:
            raise UnsupportedExpressionError("forward mode (JVP) is not available for this graph")
        values, _, vec = self._prepare(args, kwargs, need_dims=False)
        if vec:
            return self._vectorised("jvp", values, vec, tangents=tangents)
        ts = self._tangents(tangents, values)
        return self._fn["jvp"](*values, *ts)

    def _same_shape_arrays(self, kwargs):
        if len(kwargs) != self._n_inputs:
            return None
        try:
            vals = self._by_name(kwargs)
        except KeyError:
            return None
        first = vals[0]
        if type(first) is not np.ndarray or first.ndim != 1:
            return None
        dtype, shape = self._np_dtype, first.shape
        for v in vals:
            if (
                type(v) is not np.ndarray
                or v.dtype != dtype
                or v.shape != shape
                or not v.flags.c_contiguous
            ):
                return None
        return vals

    def _tangents(self, tangents, values):
        by_name = {}
        for k, v in (tangents or {}).items():
            by_name[k if isinstance(k, str) else getattr(k, "name", str(k))] = v
        wrt_names = [self._names[i] for i in self._wrt]
        unknown = [k for k in by_name if k not in wrt_names]
        if unknown:
            raise InputError(
                f"tangent for {unknown[0]!r}, which is not in wrt ({', '.join(wrt_names)})"
            )
        out = []
        for i in self._wrt:
            name = self._names[i]
            ref = values[i]
            t = by_name.get(name, 0.0)
            if isinstance(ref, np.ndarray):
                t = _owned(
                    np.broadcast_to(np.asarray(t, self._np_dtype), ref.shape), self._np_dtype
                )
            else:
                t = self._scalar(t)
            out.append(t)
        return out

    # -- scalar symbols given arrays -----------------------------------------------------------
    def _vectorised(self, kind, values, vec, seed=None, tangents=None):
        if not self._all_scalar or self._variant_factory is None:
            name = self._names[vec[0]]
            raise ShapeError(
                f"input {name!r} is a scalar symbol but got an array of shape "
                f"{shape_str(values[vec[0]].shape)}; arrays for scalar symbols are supported "
                "only in expressions without matrices"
            )
        shapes = [values[k].shape for k in vec]
        try:
            full = np.broadcast_shapes(*shapes)
        except ValueError:
            detail = ", ".join(f"{self._names[k]}: {shape_str(s)}" for k, s in zip(vec, shapes))
            raise ShapeError(f"input arrays do not broadcast together ({detail})") from None
        pattern = tuple(vec)
        variant = self._variants.get(pattern)
        if variant is None:
            variant = self._variant_factory({self._names[k] for k in vec})
            self._variants[pattern] = variant
        flat = list(values)
        for k in vec:
            v = values[k]
            flat[k] = v.reshape(-1) if v.shape == full else np.broadcast_to(v, full).reshape(-1)
        length = int(np.prod(full))
        if kind == "value":
            out = variant._points_call("value", length, flat)
            return _reshape_tree(out, full)
        if kind == "jvp":
            shaped = {}
            for k, t in (tangents or {}).items():
                t = np.asarray(t, self._np_dtype)
                shaped[k] = np.broadcast_to(t, full).reshape(-1) if t.ndim else t
            ts = variant._tangents(shaped, flat)
            out = variant._fn["jvp"](*flat, *ts)
            return _reshape_tree(out, full)
        if seed is None:
            value, grads = variant._points_call("value_and_grad", length, flat)
        else:
            s = _owned(np.broadcast_to(np.asarray(seed, self._np_dtype), full), self._np_dtype)
            value, grads = variant._fn["value_and_grad_seed"](*flat, s.reshape(-1))
        shaped = []
        for g, i in zip(grads, self._wrt):
            v = values[i]
            if not isinstance(v, np.ndarray):
                shaped.append(g)
                continue
            g = g.reshape(full)
            if v.shape != full:
                lead = len(full) - v.ndim
                axes = tuple(range(lead)) + tuple(
                    lead + a for a, d in enumerate(v.shape) if d == 1 and full[lead + a] != 1
                )
                g = g.sum(axis=axes, keepdims=True).reshape(v.shape)
            shaped.append(g)
        return _reshape_tree(value, full), tuple(shaped)

    def __repr__(self) -> str:
        names = ", ".join(self._names)
        wrt = ", ".join(self._names[i] for i in self._wrt)
        return f"<symgrad.Compiled ({names}) wrt ({wrt}) {self.dtype}>"


def _convert_ids(name: str, value) -> np.ndarray:
    """An index input as a C-contiguous int64 array; floats and booleans are refused."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise InputError(
            f"index input {name!r} must hold integers, got dtype {arr.dtype} "
            "(row ids; -1 marks padding)"
        )
    return np.ascontiguousarray(arr, dtype=np.int64)


def _owned(arr: np.ndarray, dtype) -> np.ndarray:
    """A writeable C-contiguous copy unless ``arr`` already is one (a read-only broadcast view
    would make Numba compile a second specialisation)."""
    if arr.flags.c_contiguous and arr.flags.writeable and arr.dtype == dtype:
        return arr
    return np.array(arr, dtype=dtype, order="C", copy=True)


def _reshape_tree(out, shape):
    if isinstance(out, tuple):
        return tuple(_reshape_tree(o, shape) for o in out)
    if isinstance(out, np.ndarray) and out.ndim == 1:
        return out.reshape(shape)
    return out


def _symbol_for(name: str, shape: tuple):
    if len(shape) == 3:
        from ..ir.scan_expr import SequenceSymbol

        return SequenceSymbol(name, *shape)
    return sp.MatrixSymbol(name, *shape) if shape else sp.Symbol(name)
