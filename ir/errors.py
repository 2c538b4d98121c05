"""Errors raised anywhere in the pipeline; re-exported as ``symgrad.*Error``.

They live in ``ir`` because every stage may raise them and imports only point down the
pipeline.
"""

from __future__ import annotations


class SymgradError(Exception):
    """Base class of every error symgrad raises on purpose."""


class UnsupportedExpressionError(SymgradError, NotImplementedError):
    """A SymPy node has no lowering, or an op has no emitter.

    The message names the SymPy class and the sub-expression.
    """


class ShapeError(SymgradError, ValueError):
    """Shapes do not agree: at compile time between ops, or at call time for an input."""


class InputError(SymgradError, TypeError):
    """A missing, unknown or non-numeric input."""


class CacheError(SymgradError):
    """A cache entry could not be read; callers rebuild it."""
