"""symgrad.runtime: train models written as SymPy math at compiled speed.

Parameter stores and initialisers, optimisers written as SymPy update rules fused into the
compiled training step, learning-rate schedules, seeded mini-batches, a ``Trainer`` with a
progress bar, validation, early stopping and atomic checkpoints, full-batch training with
``scipy.optimize``, loss/accuracy plots, and the ``MLP`` model builder.

Examples
--------
>>> import numpy as np
>>> from symgrad.runtime import MLP, Trainer, Adam
>>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
>>> y = np.array([0, 1, 1, 0])
>>> trainer = Trainer(MLP([2, 8, 2]), Adam(lr=0.05), batch_size=4, progress=False)
>>> _ = trainer.fit(X, y, epochs=300)
>>> trainer.predict(X).tolist()
[0, 1, 1, 0]
"""

from .batching import Batches
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .errors import DataError, NonFiniteLossError
from .models import MLP
from .optimizers import SGD, Adagrad, Adam, Momentum, Nesterov, Optimizer, RMSprop
from .params import (
    ParamStore,
    constant,
    he_normal,
    he_uniform,
    xavier_normal,
    xavier_uniform,
    zeros,
)
from .plot import plot_history
from .schedules import Constant, Cyclic, ExponentialDecay, Schedule, StepDecay
from .scipy_opt import minimize
from .trainer import Trainer

__all__ = [
    "Batches",
    "Checkpoint",
    "CheckpointError",
    "load_checkpoint",
    "save_checkpoint",
    "DataError",
    "NonFiniteLossError",
    "MLP",
    "SGD",
    "Adagrad",
    "Adam",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "RMSprop",
    "ParamStore",
    "constant",
    "he_normal",
    "he_uniform",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
    "plot_history",
    "Constant",
    "Cyclic",
    "ExponentialDecay",
    "Schedule",
    "StepDecay",
    "minimize",
    "Trainer",
]
