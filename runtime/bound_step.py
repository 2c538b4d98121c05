"""The bound training step used by the trainer: see :class:`symgrad.codegen.bound.BoundStep`
(what :meth:`symgrad.codegen.step.Step.bind` returns)."""

from ..codegen.bound import BoundStep

__all__ = ["BoundStep"]
