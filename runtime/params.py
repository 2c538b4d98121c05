"""A named store of parameter arrays and the usual seeded initialisers.

The compiled training step updates parameters *in place*, so the store hands out the same
C-contiguous arrays for its whole life: loading a checkpoint or a flat vector copies values into
them instead of replacing them (a precomputed argument list stays valid).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Union

import numpy as np

from ..ir.errors import InputError, ShapeError

#: ``init(shape, rng) -> ndarray`` (float64; the store converts to its dtype).
Initializer = Callable[[tuple, np.random.Generator], np.ndarray]
InitSpec = Union[str, float, Initializer]

__all__ = [
    "ParamStore",
    "constant",
    "get_initializer",
    "he_normal",
    "he_uniform",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
    "INITIALIZERS",
]


def _fans(shape: tuple) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight used as ``X @ W`` with ``X`` of shape ``(n, fan_in)``."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    fan_in, fan_out = shape[0], shape[1]
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return fan_in * receptive, fan_out * receptive


def zeros(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """All zeros (the usual bias initialiser)."""
    return np.zeros(shape)


def constant(value: float) -> Initializer:
    """An initialiser filling every entry with ``value``."""

    def init(shape: tuple, rng: np.random.Generator) -> np.ndarray:
        return np.full(shape, float(value))

    init.__name__ = f"constant({value!r})"
    return init


def xavier_uniform(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Glorot & Bengio (2010): U(−a, a) with a = √(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape)


def xavier_normal(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Glorot & Bengio (2010): N(0, σ²) with σ = √(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=shape)


def he_normal(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """He et al. (2015), for ReLU layers: N(0, σ²) with σ = √(2 / fan_in)."""
    fan_in, _ = _fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


def he_uniform(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """He et al. (2015): U(−a, a) with a = √(6 / fan_in)."""
    fan_in, _ = _fans(shape)
    a = np.sqrt(6.0 / fan_in)
    return rng.uniform(-a, a, size=shape)


INITIALIZERS: dict[str, Initializer] = {
    "zeros": zeros,
    "xavier_uniform": xavier_uniform,
    "glorot_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "glorot_normal": xavier_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "he": he_normal,
}


def get_initializer(spec: InitSpec) -> Initializer:
    """An initialiser from a name in :data:`INITIALIZERS`, a number (constant) or a callable."""
    if callable(spec):
        return spec
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return constant(spec)
    if isinstance(spec, str) and spec in INITIALIZERS:
        return INITIALIZERS[spec]
    raise InputError(
        f"unknown initialiser {spec!r}; use one of {sorted(INITIALIZERS)}, a number or a callable"
    )


class ParamStore(Mapping):
    """Named parameter arrays, all C-contiguous and of one dtype.

    Parameters
    ----------
    dtype
        ``"float64"`` or ``"float32"``.
    seed
        Seed of the generator that initialisers draw from, in the order parameters are added.

    Examples
    --------
    >>> store = ParamStore("float32", seed=0)
    >>> store.add("W", (3, 2), "xavier_uniform").shape
    (3, 2)
    >>> store.add("b", (1, 2), "zeros").tolist()
    [[0.0, 0.0]]
    >>> store.size, store["W"].dtype
    (8, dtype('float32'))
    """

    def __init__(self, dtype: str = "float64", seed: int | None = 0):
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float64, np.float32):
            raise InputError(f"dtype must be float64 or float32, got {dtype!r}")
        self.rng = np.random.default_rng(seed)
        self._arrays: dict[str, np.ndarray] = {}

    # -- Mapping -------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}: {v.shape}" for k, v in self._arrays.items())
        return f"ParamStore({self.dtype.name}; {inner})"

    # -- building ------------------------------------------------------------------------------
    def add(self, name: str, shape: tuple, init: InitSpec = "xavier_uniform") -> np.ndarray:
        """Create parameter ``name`` of ``shape`` filled by ``init``; returns the array."""
        if name in self._arrays:
            raise InputError(f"parameter {name!r} already exists")
        shape = tuple(int(d) for d in shape)
        values = np.asarray(get_initializer(init)(shape, self.rng))
        if values.shape != shape:
            raise ShapeError(f"initialiser for {name!r} gave shape {values.shape}, not {shape}")
        self._arrays[name] = np.ascontiguousarray(values, dtype=self.dtype)
        return self._arrays[name]

    def set(self, name: str, values) -> None:
        """Copy ``values`` into the existing array ``name`` (its identity is kept)."""
        target = self._arrays[name]
        values = np.asarray(values)
        if values.shape != target.shape:
            raise ShapeError(f"parameter {name!r} has shape {target.shape}, got {values.shape}")
        target[...] = values

    def update(self, values: Mapping[str, np.ndarray]) -> None:
        """:meth:`set` for every entry of ``values``; all names must exist."""
        unknown = [k for k in values if k not in self._arrays]
        if unknown:
            raise InputError(f"unknown parameter(s) {unknown}; have {list(self._arrays)}")
        for k, v in values.items():
            self.set(k, v)

    def copy(self) -> dict[str, np.ndarray]:
        """An independent copy of every array (a snapshot)."""
        return {k: v.copy() for k, v in self._arrays.items()}

    # -- flat views for scipy.optimize ---------------------------------------------------------
    @property
    def size(self) -> int:
        """Total number of scalars."""
        return sum(a.size for a in self._arrays.values())

    def flat(self, dtype=np.float64) -> np.ndarray:
        """All parameters concatenated in insertion order, C order within each array."""
        if not self._arrays:
            return np.zeros(0, dtype=dtype)
        return np.concatenate([a.ravel() for a in self._arrays.values()]).astype(dtype)

    def assign_flat(self, vector: np.ndarray) -> None:
        """Inverse of :meth:`flat`: copy a flat vector back into the arrays."""
        vector = np.asarray(vector)
        if vector.shape != (self.size,):
            raise ShapeError(f"flat vector has shape {vector.shape}, expected ({self.size},)")
        offset = 0
        for a in self._arrays.values():
            a[...] = vector[offset : offset + a.size].reshape(a.shape)
            offset += a.size
