"""Errors of the training runtime (subclasses of :class:`symgrad.SymgradError`)."""

from __future__ import annotations

from ..ir.errors import SymgradError

__all__ = ["DataError", "NonFiniteLossError"]


class DataError(SymgradError, ValueError):
    """Training data the model cannot take: a label out of range, a non-integer class label,
    targets outside [0, 1] for a sigmoid output, a non-finite feature. Raised before anything
    is compiled."""


class NonFiniteLossError(SymgradError, FloatingPointError):
    """The training loss became NaN or infinite; training stopped.

    Attributes
    ----------
    step
        The 1-based number of the update whose loss was not finite.
    epoch, batch
        Where it happened (1-based).
    value
        The loss value.
    checkpoint
        The last good checkpoint file (kept, never overwritten), or ``None``.
    """

    def __init__(
        self, message: str, *, step: int, epoch: int, batch: int, value: float, checkpoint=None
    ):
        super().__init__(message)
        self.step, self.epoch, self.batch = step, epoch, batch
        self.value, self.checkpoint = value, checkpoint

    @classmethod
    def for_loss(cls, value, step, epoch, batch, n_batches, checkpoint=None, saved_epoch=None):
        """The loss of update ``step`` (batch ``batch`` of ``n_batches`` in ``epoch``; all
        1-based) was ``value``; the parameters were put back to the end of the previous epoch."""
        kept = _kept(checkpoint, saved_epoch)
        return cls(
            f"training stopped: the loss is {float(value)} at step {step} (epoch {epoch}, batch "
            f"{batch} of {n_batches}). The parameters were restored to the end of epoch "
            f"{epoch - 1}.{kept} Try a smaller learning rate, clip_norm=..., or check the data.",
            step=step,
            epoch=epoch,
            batch=batch,
            value=float(value),
            checkpoint=checkpoint if kept else None,
        )

    @classmethod
    def for_parameter(cls, name, step, epoch, checkpoint=None, saved_epoch=None):
        """Parameter ``name`` became non-finite in the last update (``step``) of ``epoch``."""
        kept = _kept(checkpoint, saved_epoch)
        return cls(
            f"training stopped: parameter {name!r} became non-finite at step {step} (the last "
            f"of epoch {epoch}); the parameters were restored to the end of epoch {epoch - 1}."
            f"{kept}",
            step=step,
            epoch=epoch,
            batch=0,
            value=float("nan"),
            checkpoint=checkpoint if kept else None,
        )


def _kept(checkpoint, saved_epoch) -> str:
    if checkpoint is None or saved_epoch is None:
        return ""
    return f" The last good checkpoint, {checkpoint} (epoch {saved_epoch}), was kept."
