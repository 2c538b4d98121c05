"""``Trainer``: mini-batch training with one compiled call per step.

The whole step (forward, backward, optimiser update of parameters and state in place) is one
function built by :func:`symgrad.compile_step`. The trainer builds its positional argument list
once; per step it only swaps in the batch slices and the scalar hyperparameters that change
(learning rate, Adam's step count), calls the function and reads the loss.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..compiler.step import CLIP, hyper_name
from ..ir.errors import InputError
from .batching import Batches
from .bound_step import BoundStep
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .early_stopping import EarlyStopping
from .errors import NonFiniteLossError
from .evaluator import Evaluator
from .optimizers import Adam, Optimizer
from .params import InitSpec
from .schedules import Constant, as_schedule

__all__ = ["Trainer"]

#: Seconds between refreshes of the progress bar's numbers.
POSTFIX_INTERVAL = 0.25


class Trainer:
    """Train a model (e.g. :class:`~symgrad.runtime.MLP`) with a fused, compiled training step.

    Parameters
    ----------
    model
        The model: its ``loss``, ``outputs``, ``params``, ``prepare`` ... (see
        :mod:`symgrad.runtime.models`).
    optimizer
        An :class:`~symgrad.runtime.optimizers.Optimizer` (default ``Adam()``).
    batch_size
        Examples per step; the last batch of an epoch holds the remainder.
    dtype
        ``"float64"`` or ``"float32"``: the compiled code's and the parameters' dtype.
    schedule
        Learning rate per step: a :mod:`~symgrad.runtime.schedules` schedule or a callable
        ``(epoch, step) -> lr`` (default: the optimiser's ``lr``).
    clip_norm
        If given, gradients are scaled to a global norm of at most this value.
    seed
        Seeds parameter initialisation and the batch shuffling (two independent streams).
    init
        Weight initialiser passed to ``model.init_params`` (default: the model's choice).
    checkpoint
        A file to checkpoint to every ``checkpoint_every`` epochs and at the end (atomically).
    patience
        Early stopping: stop after this many epochs without improvement of ``monitor``.
    monitor
        ``"val_loss"`` (default with validation data), ``"loss"``, ``"val_accuracy"`` or
        ``"accuracy"``; accuracies are maximised, losses minimised.
    min_delta
        The smallest change that counts as an improvement.
    restore_best
        When early stopping, put back the parameters of the best epoch.
    progress
        Show a tqdm progress bar.

    Attributes
    ----------
    params
        The :class:`~symgrad.runtime.params.ParamStore` (updated in place by training).
    opt_state
        Optimiser state arrays by name (``"W1:m"`` ...).
    history
        Per-epoch lists: ``loss`` (the mean training loss over the epoch's steps, each taken
        before its update, penalties included), ``accuracy``, ``val_loss``, ``val_accuracy``,
        ``lr`` (of the epoch's last step), ``seconds``, ``steps_per_second``.
    epoch, steps
        Epochs and updates completed so far.
    """

    def __init__(
        self,
        model,
        optimizer: Optimizer | None = None,
        *,
        batch_size: int = 32,
        dtype: str = "float64",
        schedule=None,
        clip_norm: float | None = None,
        seed: int = 0,
        init: InitSpec | None = None,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
        patience: int | None = None,
        monitor: str | None = None,
        min_delta: float = 0.0,
        restore_best: bool = True,
        progress: bool = True,
    ):
        if dtype not in ("float64", "float32"):
            raise InputError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.optimizer = optimizer if optimizer is not None else Adam()
        self.batch_size = int(batch_size)
        self.dtype = dtype
        self._cast = float if dtype == "float64" else np.float32
        self.schedule = as_schedule(schedule, self.optimizer.lr)
        self.clip_norm = clip_norm
        self.seed = seed
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.checkpoint_every = max(1, int(checkpoint_every))
        self.early = EarlyStopping(patience, monitor, min_delta, restore_best)
        self.progress = progress

        self.params = model.init_params(seed=seed, dtype=dtype, init=init)
        self.opt_state = self.optimizer.init_state(self.params)
        # A stream of its own for shuffling, so changing the init does not change batch order.
        self.rng = np.random.default_rng([seed, 1])
        self.epoch = 0
        self.steps = 0
        self.history: dict[str, list[float]] = {}
        self.compile_seconds = 0.0
        self.train_seconds = 0.0
        self._step_fn = None
        self._saved_epoch = None  # the epoch of the checkpoint this trainer last wrote or read
        self.evaluator = Evaluator(model, self.params, dtype)

    @property
    def stopped_early(self) -> bool:
        """Early stopping ended the last :meth:`fit`."""
        return self.early.stopped

    @property
    def best(self) -> dict | None:
        """The best monitored value so far: ``{"value", "epoch", "wait"}``."""
        return self.early.best

    # -- compiled functions --------------------------------------------------------------------
    def _outputs(self) -> list:
        return [self.model.loss, self.model.outputs]

    def compiled_step(self):
        """The compiled training step (built on first use, then cached on disk)."""
        if self._step_fn is None:
            from symgrad import compile_step

            t0 = time.perf_counter()
            self._step_fn = compile_step(
                self._outputs(),
                self.model.params,
                self.optimizer.rule,
                self.dtype,
                clip_norm=self.clip_norm is not None,
            )
            self.compile_seconds += time.perf_counter() - t0
        return self._step_fn

    def compiled_eval(self):
        """``symgrad.compile([loss, outputs], wrt=params)``: evaluation and full-batch training."""
        if self.evaluator._compiled is None:
            t0 = time.perf_counter()
            self.evaluator.compiled  # noqa: B018 - builds it
            self.compile_seconds += time.perf_counter() - t0
        return self.evaluator.compiled

    # -- evaluation ----------------------------------------------------------------------------
    def _evaluate(self, arrays, labels) -> dict[str, float]:
        self.compiled_eval()
        return self.evaluator.metrics(arrays, labels)

    def evaluate(self, X, y) -> dict[str, float]:
        """Mean loss (and accuracy for classifiers) on a data set."""
        arrays, labels = self.model.prepare(X, y, self.dtype)
        return self._evaluate(arrays, labels)

    def predict_outputs(self, X) -> np.ndarray:
        """The model's outputs (logits for an MLP) for the rows of ``X``."""
        # The evaluation function also computes the loss, so it needs targets: zeros will do.
        n = np.shape(X)[0]
        if getattr(self.model, "output", None) == "softmax":
            y = np.zeros(n, dtype=np.int64)
        else:
            y = np.zeros((n, int(self.model.Y.shape[1])))
        arrays, _ = self.model.prepare(X, y, self.dtype)
        self.compiled_eval()
        return self.evaluator.outputs(arrays)

    def predict(self, X) -> np.ndarray:
        """Class predictions (or regression outputs) for the rows of ``X``."""
        return self.model.predict_labels(self.predict_outputs(X))

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write parameters, optimiser state, RNG state, epoch, step count and history."""
        groups = {"params": dict(self.params), "state": self.opt_state}
        if self.early.best_params is not None:
            groups["best_params"] = self.early.best_params
        meta = {
            "epoch": self.epoch,
            "steps": self.steps,
            "rng": self.rng.bit_generator.state,
            "history": self.history,
            "early_stopping": self.early.state(),
            "dtype": self.dtype,
            "optimizer": self.optimizer.config(),
            "model": self.model.config() if hasattr(self.model, "config") else None,
            "batch_size": self.batch_size,
        }
        path = save_checkpoint(path, groups, meta)
        if path == self.checkpoint:
            self._saved_epoch = self.epoch
        return path

    def load(self, path: str | os.PathLike) -> None:
        """Restore a checkpoint written by :meth:`save` into this trainer's arrays."""
        ck = load_checkpoint(path)
        meta = ck.meta
        if meta.get("dtype") != self.dtype:
            raise CheckpointError(
                f"checkpoint {path} is {meta.get('dtype')}, this trainer {self.dtype}"
            )
        model_config = self.model.config() if hasattr(self.model, "config") else None
        if meta.get("model") is not None and model_config is not None:
            if meta["model"] != model_config:
                raise CheckpointError(
                    f"checkpoint {path} is of model {meta['model']}, not {model_config}"
                )
        if set(ck.params) != set(self.params) or set(ck.state) != set(self.opt_state):
            raise CheckpointError(
                f"checkpoint {path} holds {sorted(ck.params)} / {sorted(ck.state)}, this trainer "
                f"{sorted(self.params)} / {sorted(self.opt_state)}"
            )
        self.params.update(ck.params)
        for name, value in ck.state.items():
            self.opt_state[name][...] = value
        self.epoch, self.steps = int(meta["epoch"]), int(meta["steps"])
        if Path(path) == self.checkpoint:
            self._saved_epoch = self.epoch
        self.rng.bit_generator.state = meta["rng"]
        self.history = {k: list(v) for k, v in meta["history"].items()}
        self.early.load_state(meta["early_stopping"], ck.groups.get("best_params"))

    # -- training ------------------------------------------------------------------------------
    def fit(
        self,
        X,
        y,
        epochs: int = 10,
        validation_data: tuple | None = None,
        *,
        resume: bool | str | os.PathLike = False,
    ) -> dict[str, list[float]]:
        """Train until ``epochs`` epochs are done in total (counting resumed ones).

        Data are checked (shapes, label range, finiteness) before anything is compiled. Each
        step is one compiled call; validation runs after every epoch; a checkpoint is written
        atomically every ``checkpoint_every`` epochs.

        Parameters
        ----------
        X, y
            Training examples (rows) and labels (class indices for a softmax output).
        epochs
            The total number of epochs to reach.
        validation_data
            ``(X_val, y_val)`` evaluated after every epoch (``val_loss``, ``val_accuracy``).
        resume
            ``True`` to continue from this trainer's ``checkpoint`` file, or a checkpoint path.
            The result is bit-identical to a run that was never interrupted.

        Returns
        -------
        dict
            The history (also ``self.history``).

        Raises
        ------
        ShapeError, DataError
            Bad data, before compilation.
        NonFiniteLossError
            The loss became NaN or infinite: names the step; the parameters are restored to the
            last good epoch and the checkpoint on disk is kept.

        Examples
        --------
        >>> import numpy as np
        >>> from symgrad.runtime import MLP, Trainer, Adam
        >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        >>> y = np.array([0, 1, 1, 0])
        >>> trainer = Trainer(MLP([2, 8, 2], "tanh", "softmax"), Adam(lr=0.05), batch_size=4,
        ...                   seed=0, progress=False)
        >>> history = trainer.fit(X, y, epochs=300)
        >>> trainer.predict(X).tolist(), history["accuracy"][-1]
        ([0, 1, 1, 0], 1.0)
        """
        arrays, labels = self.model.prepare(X, y, self.dtype)
        val = None
        if validation_data is not None:
            val = self.model.prepare(*validation_data, self.dtype)
        if resume:
            path = self.checkpoint if resume is True else Path(resume)
            if path is None:
                raise InputError("resume=True needs the trainer's checkpoint path")
            self.load(path)
        if self.epoch >= epochs:
            return self.history
        self.early.resolve(val is not None)  # a bad monitor fails before compiling

        run = self._bind(self.compiled_step(), arrays)
        if val is not None:
            # Compile the evaluation function too, on one row: its build (which compiled_eval
            # times itself) and its first call count as compile time, once.
            before, t0 = self.compile_seconds, time.perf_counter()
            self._evaluate(tuple(a[:1] for a in val[0]), val[1][:1])
            self.compile_seconds = before + (time.perf_counter() - t0)
        batches = Batches([*arrays, labels], self.batch_size, seed=self.rng)
        bar = tqdm(
            total=(epochs - self.epoch) * len(batches),
            unit="step",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        try:
            while self.epoch < epochs and not self.stopped_early:
                bar.set_description(f"epoch {self.epoch + 1}/{epochs}", refresh=False)
                record = self._run_epoch(run, batches, bar)
                if val is not None:
                    for k, v in self._evaluate(*val).items():
                        record[f"val_{k}"] = v
                for k, v in record.items():
                    self.history.setdefault(k, []).append(v)
                self.epoch += 1
                self.early.update(record, self.epoch, self.params)
                bar.set_postfix_str(self._postfix(record), refresh=False)
                last_epoch = self.epoch >= epochs or self.stopped_early
                if self.checkpoint is not None and (
                    self.epoch % self.checkpoint_every == 0 or last_epoch
                ):
                    self.save(self.checkpoint)
        finally:
            bar.close()
        if self.early.stopped and self.early.best_params is not None:
            self.params.update(self.early.best_params)
        return self.history

    def _run_epoch(self, run: BoundStep, batches: Batches, bar) -> dict:
        """One pass over the shuffled data: the hot loop. Returns the epoch's record."""
        epoch, model, cast, schedule = self.epoch, self.model, self._cast, self.schedule
        args, fn, slots = run.args, run.fn, run.slots
        i_data = [slots[name] for name in model.data_names]
        i_lr, i_t = slots["opt:lr"], slots.get("opt:t")
        # A constant rate is set once; other schedules are asked before every step.
        fixed_lr = isinstance(schedule, Constant)
        lr = schedule(epoch, self.steps)
        args[i_lr] = cast(lr)
        *data, labels = batches.shuffled()
        outputs = None  # every batch's outputs, for the epoch's accuracy
        snapshot = self._snapshot()
        loss_sum, shown, last_refresh = 0.0, 0, 0.0
        # The running numbers replace the bar's postfix: carry the last validation result along.
        last_val = {k: v[-1] for k, v in self.history.items() if k.startswith("val_") and v}
        steps = self.steps
        t_start = time.perf_counter()
        slices = batches.slices
        for b, rows in enumerate(slices):
            for slot, a in zip(i_data, data):
                args[slot] = a[rows]
            if not fixed_lr:
                lr = schedule(epoch, steps)
                args[i_lr] = cast(lr)
            if i_t is not None:
                args[i_t] = cast(steps + 1)
            loss, out = fn(*args)
            if not math.isfinite(loss):
                self.steps = steps
                self._stop_non_finite(loss, epoch, b, len(slices), snapshot)
            loss_sum += float(loss) * (rows.stop - rows.start)
            if outputs is None:
                outputs = np.empty((batches.n, *out.shape[1:]), dtype=out.dtype)
            outputs[rows] = out
            steps += 1
            now = time.perf_counter()
            if now - last_refresh > POSTFIX_INTERVAL:
                # Update the bar in chunks: a per-step update costs as much as a small step.
                last_refresh = now
                bar.update(b + 1 - shown)
                shown = b + 1
                seen = rows.stop
                correct = model.n_correct(outputs[:seen], labels[:seen])
                running = {"loss": loss_sum / seen, **last_val}
                if correct is not None:
                    running["accuracy"] = correct / seen
                bar.set_postfix_str(self._postfix(running), refresh=False)
        bar.update(len(slices) - shown)
        seconds = time.perf_counter() - t_start
        self.steps = steps
        self.train_seconds += seconds
        self._check_params(epoch, snapshot)
        seen = slices[-1].stop
        record = {
            "loss": loss_sum / seen,
            "lr": float(lr),
            "seconds": seconds,
            "steps_per_second": len(slices) / seconds,
        }
        correct = model.n_correct(outputs[:seen], labels[:seen])
        if correct is not None:
            record["accuracy"] = correct / seen
        return record

    def _bind(self, step, arrays) -> BoundStep:
        """The step bound to this trainer's arrays, compiled by Numba (timed as compile time)."""
        hypers = self.optimizer.hyper_values(self.steps, self.schedule(self.epoch, self.steps))
        if self.clip_norm is not None:
            hypers[hyper_name(CLIP)] = float(self.clip_norm)
        batch = dict(zip(self.model.data_names, (a[: self.batch_size] for a in arrays)))
        run = step.bind({**self.params, **self.opt_state, **batch, **hypers})
        # Compile on copies, so the real parameters see only real steps.
        self.compile_seconds += run.warm_up()
        return run

    def _snapshot(self) -> dict[str, np.ndarray]:
        return {**self.params.copy(), **{k: v.copy() for k, v in self.opt_state.items()}}

    def _restore(self, snapshot) -> None:
        for k, v in snapshot.items():
            (self.params[k] if k in self.params else self.opt_state[k])[...] = v

    def _stop_non_finite(self, loss, epoch, batch, n_batches, snapshot):
        self._restore(snapshot)
        raise NonFiniteLossError.for_loss(
            loss, self.steps + 1, epoch + 1, batch + 1, n_batches, self.checkpoint,
            self._saved_epoch,
        )  # fmt: skip

    def _check_params(self, epoch, snapshot):
        # The last update of an epoch can make parameters non-finite while its loss (computed
        # before the update) was fine: never validate or checkpoint such parameters.
        for name, a in self.params.items():
            if not np.isfinite(a).all():
                self._restore(snapshot)
                raise NonFiniteLossError.for_parameter(
                    name, self.steps, epoch + 1, self.checkpoint, self._saved_epoch
                )

    @staticmethod
    def _postfix(record: dict) -> str:
        labels = {
            "loss": "loss",
            "accuracy": "acc",
            "val_loss": "val_loss",
            "val_accuracy": "val_acc",
        }
        return " ".join(
            f"{short}={record[key]:.4f}"
            for key, short in labels.items()
            if record.get(key) is not None
        )

    # -- full batch ----------------------------------------------------------------------------
    def fit_full_batch(self, X, y, method: str = "L-BFGS-B", maxiter: int = 500, **kwargs):
        """Full-batch training with ``scipy.optimize.minimize`` (see
        :func:`symgrad.runtime.scipy_opt.minimize`); returns its ``OptimizeResult``."""
        from .scipy_opt import minimize

        arrays, _ = self.model.prepare(X, y, self.dtype)
        data = dict(zip(self.model.data_names, arrays))
        t0 = time.perf_counter()
        result = minimize(
            self.compiled_eval(), self.params, data, method, maxiter=maxiter, **kwargs
        )
        self.train_seconds += time.perf_counter() - t0
        return result
