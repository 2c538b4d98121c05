"""Testing kit for symgrad users: gradient checks and hypothesis strategies.

``check_grad`` and ``check_grad_sympy`` need only NumPy and SymPy. The hypothesis strategies
(``expressions``, ``input_values``, ...) are loaded on first use, so ``hypothesis`` is only
required by code that uses them.
"""

from __future__ import annotations

from typing import Any

from .check import GradCheckResult, check_grad, check_grad_sympy

_STRATEGY_NAMES = (
    "ALL_FUNCTIONS",
    "NONSMOOTH_FUNCTIONS",
    "SMOOTH_FUNCTIONS",
    "SPECIAL_FUNCTIONS",
    "arrays_for",
    "bounded_expressions",
    "expressions",
    "input_values",
    "kink_distance",
)

__all__ = ["GradCheckResult", "check_grad", "check_grad_sympy", *_STRATEGY_NAMES]


def __getattr__(name: str) -> Any:
    # PEP 562: import the hypothesis-based strategies only when one of them is asked for.
    if name in _STRATEGY_NAMES:
        from . import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
