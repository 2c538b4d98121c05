"""Loss and accuracy curves of a training history, saved as a PNG.

Uses matplotlib's object API with the Agg canvas directly (no ``pyplot``), so it works without a
display and never changes the caller's global matplotlib backend.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["plot_history"]


def plot_history(
    history: Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Plot ``loss``/``val_loss`` and, if present, ``accuracy``/``val_accuracy`` per epoch.

    Parameters
    ----------
    history
        As returned by :meth:`symgrad.runtime.Trainer.fit`: lists indexed by epoch.
    path
        Where to write the PNG (folders are created).

    Returns
    -------
    Path
        The written file.

    Examples
    --------
    >>> import tempfile, os
    >>> out = plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]},
    ...                    os.path.join(tempfile.mkdtemp(), "curves.png"))
    >>> out.suffix, out.stat().st_size > 0
    ('.png', True)
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [("loss", "loss")]
    if any(history.get(k) for k in ("accuracy", "val_accuracy")):
        panels.append(("accuracy", "accuracy"))
    fig = Figure(figsize=(5.5 * len(panels), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    for k, (key, label) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), k)
        for name, style in ((key, "-"), (f"val_{key}", "--")):
            values = history.get(name)
            if values:
                epochs = range(1, len(values) + 1)
                ax.plot(
                    epochs,
                    values,
                    style,
                    marker="o",
                    markersize=3,
                    label="validation" if name.startswith("val_") else "training",
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if key == "loss":
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
