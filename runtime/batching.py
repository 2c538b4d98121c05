"""Seeded, shuffled mini-batches.

Each epoch draws one permutation, gathers every array once in that order, and then yields
contiguous row slices: a row slice of a C-contiguous array is itself C-contiguous, so the
compiled step receives batches with no per-step copy. The last batch may be smaller (the batch
dimension of compiled models is symbolic).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ..ir.errors import InputError, ShapeError

__all__ = ["Batches"]


class Batches:
    """Mini-batches of aligned arrays with a seeded shuffle per epoch.

    Parameters
    ----------
    arrays
        Arrays sharing their first (example) axis.
    batch_size
        Rows per batch; the last batch of an epoch holds the remainder unless ``drop_last``.
    seed
        Seed of the shuffling generator (a ``numpy.random.Generator``; its state can be saved and
        restored with :attr:`rng_state` for bit-identical resumption).
    shuffle
        Draw a new order every epoch (otherwise keep the given order).

    Examples
    --------
    >>> X = np.arange(10.0).reshape(5, 2)
    >>> [x.shape[0] for (x,) in Batches([X], batch_size=2, seed=0).epoch()]
    [2, 2, 1]
    """

    def __init__(
        self,
        arrays: Sequence[np.ndarray],
        batch_size: int,
        seed: int | None = 0,
        shuffle: bool = True,
        drop_last: bool = False,
    ):
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.arrays = [np.ascontiguousarray(a) for a in arrays]
        lengths = {a.shape[0] for a in self.arrays}
        if len(lengths) != 1:
            raise ShapeError(f"arrays have different numbers of rows: {sorted(lengths)}")
        self.n = lengths.pop()
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    @property
    def rng_state(self) -> dict:
        """The shuffling generator's state (JSON-able)."""
        return self.rng.bit_generator.state

    @rng_state.setter
    def rng_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    @property
    def slices(self) -> list[slice]:
        """The row range of each batch of an epoch."""
        stop = self.n - (self.n % self.batch_size if self.drop_last else 0)
        return [slice(i, min(i + self.batch_size, self.n)) for i in range(0, stop, self.batch_size)]

    def shuffled(self) -> list[np.ndarray]:
        """The arrays in this epoch's order (one permutation drawn, one gather per array)."""
        if not self.shuffle:
            return list(self.arrays)
        order = self.rng.permutation(self.n)
        return [a[order] for a in self.arrays]

    def epoch(self) -> Iterator[tuple[np.ndarray, ...]]:
        """Yield the batches of one epoch, each a tuple with one slice per array."""
        data = self.shuffled()
        for rows in self.slices:
            yield tuple(a[rows] for a in data)
