"""Optimisers as scalar SymPy update rules, fused into the compiled training step.

Each optimiser is an :class:`~symgrad.compiler.step.UpdateRule`: the update of one parameter
element ``p`` from its gradient ``g``, its per-element state (e.g. Adam's ``m`` and ``v``) and
scalar hyperparameters. :func:`symgrad.compile_step` applies the rule elementwise to every
parameter inside the one Numba call of a training step. All hyperparameters are run-time inputs
(``"opt:lr"``, ``"opt:beta1"``, ...), so a learning-rate schedule or a new β needs no recompile.

Formulas (``lr`` is the learning rate, ``t`` the 1-based count of updates so far):

==========  =====================================================================================
SGD         p ← p − lr·g
Momentum    v ← μ·v − lr·g;  p ← p + v                                   (Sutskever et al. 2013)
Nesterov    v ← μ·v − lr·g;  p ← p + μ·v − lr·g        (the look-ahead form of Bengio et al. 2012)
Adagrad     G ← G + g²;  p ← p − lr·g / (√G + ε)
RMSprop     s ← ρ·s + (1 − ρ)·g²;  p ← p − lr·g / (√s + ε)
Adam        m ← β₁·m + (1 − β₁)·g;  v ← β₂·v + (1 − β₂)·g²;
            p ← p − lr·m̂ / (√v̂ + ε),  m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)    (Kingma & Ba 2015)
==========  =====================================================================================

State arrays start at zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import sympy as sp

from ..compiler.step import UpdateRule, hyper_name, state_name
from ..ir.errors import InputError

__all__ = ["Optimizer", "SGD", "Momentum", "Nesterov", "Adagrad", "RMSprop", "Adam", "OPTIMIZERS"]

# Placeholders shared by every rule: one parameter element and its gradient.
_p, _g = sp.symbols("param grad")


def _sym(name: str) -> sp.Symbol:
    return sp.Symbol(name)


class Optimizer:
    """Base class: an update rule plus its hyperparameter values.

    Subclasses define ``rule`` (built once per class), ``defaults`` (hyperparameter values) and
    whether the rule needs the step count ``t``. Construct with keyword overrides.

    Examples
    --------
    >>> opt = Adam(lr=1e-2)
    >>> opt.state_names, opt.hyper_values(step=0)["opt:t"]
    (['m', 'v'], 1.0)
    >>> opt.rule.updates[-1]
    (param, -lr*m/((1 - beta1**t)*(eps + sqrt(v/(1 - beta2**t)))) + param)
    """

    name: ClassVar[str] = "optimizer"
    rule: ClassVar[UpdateRule]
    defaults: ClassVar[dict[str, float]] = {}
    #: The rule reads the 1-based update count as hyperparameter ``t``.
    uses_step_count: ClassVar[bool] = False

    def __init__(self, **hypers: float):
        unknown = sorted(set(hypers) - set(self.defaults))
        if unknown:
            raise InputError(
                f"{self.name} has no hyperparameter {unknown}; it takes {sorted(self.defaults)}"
            )
        self.hypers: dict[str, float] = {
            **self.defaults,
            **{k: float(v) for k, v in hypers.items()},
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.hypers.items())
        return f"{type(self).__name__}({args})"

    @property
    def lr(self) -> float:
        """The base learning rate (a schedule may override it per step)."""
        return self.hypers["lr"]

    @property
    def state_names(self) -> list[str]:
        """Per-parameter state names (``"m"``, ``"v"``, ...)."""
        return [name for name, _ in self.rule.states]

    def hyper_values(self, step: int = 0, lr: float | None = None) -> dict[str, float]:
        """Inputs ``"opt:<name>"`` for update number ``step`` (0-based), optionally with ``lr``."""
        values = {hyper_name(_sym(k)): v for k, v in self.hypers.items()}
        if lr is not None:
            values["opt:lr"] = float(lr)
        if self.uses_step_count:
            values["opt:t"] = float(step + 1)
        return values

    def init_state(self, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Zero state arrays ``"<param>:<state>"`` shaped and typed like each parameter."""
        return {
            state_name(name, s): np.zeros_like(a, order="C")
            for name, a in params.items()
            for s in self.state_names
        }

    def config(self) -> dict:
        """JSON-able description (name and hyperparameters), stored in checkpoints."""
        return {"name": type(self).__name__, "hypers": dict(self.hypers)}

    @staticmethod
    def from_config(config: Mapping) -> Optimizer:
        """Inverse of :meth:`config`."""
        cls = OPTIMIZERS.get(config["name"])
        if cls is None:
            raise InputError(f"unknown optimiser {config['name']!r}")
        return cls(**config["hypers"])


def _rule(states: list[str], hypers: list[str], updates) -> UpdateRule:
    return UpdateRule(
        param=_p,
        grad=_g,
        states=[(s, _sym(s)) for s in states],
        hypers=[_sym(h) for h in hypers],
        updates=updates,
    )


_lr, _mu, _eps, _rho, _b1, _b2, _t = (
    _sym(s) for s in ("lr", "momentum", "eps", "rho", "beta1", "beta2", "t")
)
_v, _m, _G, _s = (_sym(s) for s in ("v", "m", "G", "s"))


class SGD(Optimizer):
    """Plain stochastic gradient descent, ``p ← p − lr·g``."""

    name = "SGD"
    defaults = {"lr": 0.01}
    rule = _rule([], ["lr"], [(_p, _p - _lr * _g)])


class Momentum(Optimizer):
    """Classical momentum: ``v ← μ·v − lr·g; p ← p + v``."""

    name = "Momentum"
    defaults = {"lr": 0.01, "momentum": 0.9}
    rule = _rule(["v"], ["lr", "momentum"], [(_v, _mu * _v - _lr * _g), (_p, _p + _v)])


class Nesterov(Optimizer):
    """Nesterov momentum: ``v ← μ·v − lr·g; p ← p + μ·v − lr·g``."""

    name = "Nesterov"
    defaults = {"lr": 0.01, "momentum": 0.9}
    rule = _rule(
        ["v"], ["lr", "momentum"], [(_v, _mu * _v - _lr * _g), (_p, _p + _mu * _v - _lr * _g)]
    )


class Adagrad(Optimizer):
    """Adagrad: ``G ← G + g²; p ← p − lr·g / (√G + ε)``."""

    name = "Adagrad"
    defaults = {"lr": 0.01, "eps": 1e-8}
    rule = _rule(
        ["G"], ["lr", "eps"], [(_G, _G + _g**2), (_p, _p - _lr * _g / (sp.sqrt(_G) + _eps))]
    )


class RMSprop(Optimizer):
    """RMSprop: ``s ← ρ·s + (1 − ρ)·g²; p ← p − lr·g / (√s + ε)``."""

    name = "RMSprop"
    defaults = {"lr": 0.001, "rho": 0.9, "eps": 1e-8}
    rule = _rule(
        ["s"],
        ["lr", "rho", "eps"],
        [(_s, _rho * _s + (1 - _rho) * _g**2), (_p, _p - _lr * _g / (sp.sqrt(_s) + _eps))],
    )


class Adam(Optimizer):
    """Adam with bias correction; the update count ``t`` is the hyperparameter ``"opt:t"``."""

    name = "Adam"
    defaults = {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    uses_step_count = True
    rule = _rule(
        ["m", "v"],
        ["lr", "beta1", "beta2", "eps", "t"],
        [
            (_m, _b1 * _m + (1 - _b1) * _g),
            (_v, _b2 * _v + (1 - _b2) * _g**2),
            (_p, _p - _lr * (_m / (1 - _b1**_t)) / (sp.sqrt(_v / (1 - _b2**_t)) + _eps)),
        ],
    )


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.__name__: cls for cls in (SGD, Momentum, Nesterov, Adagrad, RMSprop, Adam)
}
