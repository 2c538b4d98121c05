"""Learning-rate schedules: the value of ``"opt:lr"`` for each training step.

A schedule is called as ``schedule(epoch, step)`` (both 0-based; ``step`` counts updates since
the start of training) and returns the learning rate. The trainer passes it to the compiled step
as a run-time hyperparameter, so changing it never recompiles.
"""

from __future__ import annotations

import math

from ..ir.errors import InputError

__all__ = ["Schedule", "Constant", "StepDecay", "ExponentialDecay", "Cyclic", "as_schedule"]


class Schedule:
    """Base class of learning-rate schedules."""

    def __call__(self, epoch: int, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def config(self) -> dict:
        """JSON-able description (stored in checkpoints and printed in reprs)."""
        return {"name": type(self).__name__, **vars(self)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """The same learning rate throughout."""

    def __init__(self, lr: float):
        self.lr = float(lr)

    def __call__(self, epoch: int, step: int) -> float:
        return self.lr


class StepDecay(Schedule):
    """``lr0 · factor ** (epoch // every)``: by default halve every ``every`` epochs.

    Examples
    --------
    >>> s = StepDecay(0.1, every=2)
    >>> [s(epoch, 0) for epoch in range(5)]
    [0.1, 0.1, 0.05, 0.05, 0.025]
    """

    def __init__(self, lr0: float, every: int, factor: float = 0.5):
        if every < 1:
            raise InputError(f"StepDecay needs every >= 1, got {every}")
        self.lr0, self.every, self.factor = float(lr0), int(every), float(factor)

    def __call__(self, epoch: int, step: int) -> float:
        return self.lr0 * self.factor ** (epoch // self.every)


class ExponentialDecay(Schedule):
    """``lr0 · e^(−k·t)`` with ``t`` the epoch (``per="epoch"``) or the step (``per="step"``).

    Examples
    --------
    >>> s = ExponentialDecay(0.1, k=0.5)
    >>> round(s(2, 0), 6)
    0.036788
    """

    def __init__(self, lr0: float, k: float, per: str = "epoch"):
        if per not in ("epoch", "step"):
            raise InputError(f"per must be 'epoch' or 'step', got {per!r}")
        self.lr0, self.k, self.per = float(lr0), float(k), per

    def __call__(self, epoch: int, step: int) -> float:
        t = epoch if self.per == "epoch" else step
        return self.lr0 * math.exp(-self.k * t)


class Cyclic(Schedule):
    """Triangular cyclic learning rate (Smith 2017), per step.

    The rate climbs linearly from ``lr_min`` to ``lr_max`` over ``half_period`` steps, falls back
    over the next ``half_period``, and repeats.

    Examples
    --------
    >>> s = Cyclic(0.0, 1.0, half_period=2)
    >>> [s(0, t) for t in range(6)]
    [0.0, 0.5, 1.0, 0.5, 0.0, 0.5]
    """

    def __init__(self, lr_min: float, lr_max: float, half_period: int):
        if half_period < 1:
            raise InputError(f"Cyclic needs half_period >= 1, got {half_period}")
        self.lr_min, self.lr_max, self.half_period = float(lr_min), float(lr_max), int(half_period)

    def __call__(self, epoch: int, step: int) -> float:
        phase = step % (2 * self.half_period)
        frac = (
            phase / self.half_period if phase <= self.half_period else 2 - phase / self.half_period
        )
        return self.lr_min + (self.lr_max - self.lr_min) * frac


def as_schedule(schedule, default_lr: float) -> Schedule:
    """A :class:`Schedule` from ``None`` (constant ``default_lr``), a number, a schedule or a
    plain callable ``(epoch, step) -> lr``."""
    if schedule is None:
        return Constant(default_lr)
    if isinstance(schedule, (int, float)) and not isinstance(schedule, bool):
        return Constant(schedule)
    if callable(schedule):
        return schedule
    raise InputError(f"a learning-rate schedule must be a number or a callable, got {schedule!r}")
