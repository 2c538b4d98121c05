"""Early stopping: watch one number of the history and stop when it stops improving."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..ir.errors import InputError

__all__ = ["EarlyStopping"]


class EarlyStopping:
    """Track the best value of ``monitor`` and count epochs without improvement.

    Parameters
    ----------
    patience
        Stop after this many epochs without improvement (``None``: only track the best).
    monitor
        A history key such as ``"val_loss"`` or ``"val_accuracy"``; accuracies are maximised,
        everything else minimised. ``None`` picks ``"val_loss"`` with validation data, else
        ``"loss"``.
    min_delta
        The smallest change that counts as an improvement.
    restore_best
        Keep a copy of the parameters of the best epoch (to put back when stopping).

    Examples
    --------
    >>> es = EarlyStopping(patience=2, monitor="loss")
    >>> for epoch, loss in enumerate([3.0, 2.0, 2.5, 2.1], start=1):
    ...     es.update({"loss": loss}, epoch, {})
    >>> es.stopped, es.best
    (True, {'value': 2.0, 'epoch': 2, 'wait': 2})
    """

    def __init__(
        self,
        patience: int | None = None,
        monitor: str | None = None,
        min_delta: float = 0.0,
        restore_best: bool = True,
    ):
        self.patience = patience
        self.monitor = monitor
        self.min_delta = float(min_delta)
        self.restore_best = restore_best
        self.best: dict | None = None
        self.best_params: dict[str, np.ndarray] | None = None
        self.stopped = False

    def resolve(self, has_validation: bool) -> str:
        """The monitored key for a run with or without validation data."""
        monitor = self.monitor or ("val_loss" if has_validation else "loss")
        if monitor.startswith("val_") and not has_validation:
            raise InputError(f"monitor={monitor!r} needs validation_data")
        return monitor

    def update(self, record: Mapping[str, float], epoch: int, params: Mapping) -> None:
        """Account for the ``record`` of (1-based) ``epoch``; ``params`` are copied if best."""
        monitor = self.resolve(any(k.startswith("val_") for k in record))
        if monitor not in record:
            raise InputError(f"cannot monitor {monitor!r}; the history has {sorted(record)}")
        value = record[monitor]
        best = self.best
        if "accuracy" in monitor:
            improved = best is None or value > best["value"] + self.min_delta
        else:
            improved = best is None or value < best["value"] - self.min_delta
        if improved:
            self.best = {"value": value, "epoch": epoch, "wait": 0}
            if self.patience is not None and self.restore_best:
                self.best_params = {k: np.array(v, copy=True) for k, v in params.items()}
        else:
            best["wait"] += 1
            if self.patience is not None and best["wait"] >= self.patience:
                self.stopped = True

    def state(self) -> dict:
        """JSON-able state (the best-epoch parameters are saved separately as arrays)."""
        return {"best": self.best, "stopped": self.stopped}

    def load_state(self, state: Mapping, best_params: Mapping | None) -> None:
        self.best = dict(state["best"]) if state.get("best") is not None else None
        self.stopped = bool(state.get("stopped", False))
        self.best_params = (
            {k: np.array(v, copy=True) for k, v in best_params.items()} if best_params else None
        )
