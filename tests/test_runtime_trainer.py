"""The Trainer: its fused steps equal value_and_grad + a NumPy update, resuming is bit-identical,
NaN losses stop training cleanly, bad data fails before compiling, early stopping, full-batch
scipy training, float32, the progress bar.

Every Trainer here uses the same MLP and optimiser, so the module compiles one training step and
one evaluation function (the disk cache shares them between Trainer objects)."""

import numpy as np
import pytest

import symgrad as sg
from symgrad.runtime import (
    MLP,
    Adam,
    DataError,
    NonFiniteLossError,
    StepDecay,
    Trainer,
    load_checkpoint,
)

NET = MLP([4, 6, 3], activation="tanh", output="softmax", l2=1e-3)
OPT = Adam(lr=0.02, beta1=0.8, beta2=0.95)


def blobs(n=40, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    centres = np.array([[2.0, 0, 0, 1], [0, 2.0, 0, -1], [0, 0, 2.0, 0]])
    return centres[y] + rng.normal(scale=0.8, size=(n, 4)), y


def make(**kwargs) -> Trainer:
    kwargs.setdefault("batch_size", 16)
    kwargs.setdefault("progress", False)
    return Trainer(NET, OPT, **kwargs)


def _comparable(history):
    return {k: v for k, v in history.items() if k not in ("seconds", "steps_per_second")}


def test_fit_equals_value_and_grad_plus_a_numpy_adam_update():
    X, y = blobs()
    trainer = make(schedule=StepDecay(0.02, every=1), seed=5)
    vg = trainer.compiled_eval()
    params = {k: a.copy() for k, a in trainer.params.items()}
    m = {k: np.zeros_like(a) for k, a in params.items()}
    v = {k: np.zeros_like(a) for k, a in params.items()}
    Y = np.eye(3)[y]
    rng = np.random.default_rng([5, 1])  # the trainer's shuffling stream
    losses, t = [], 0
    for epoch in range(2):
        lr = 0.02 * 0.5**epoch
        order = rng.permutation(len(y))
        total = 0.0
        for start in range(0, len(y), 16):  # batches of 16, 16 and 8
            rows = order[start : start + 16]
            (loss, _), grads = vg.value_and_grad({**params, "X": X[rows], "Y": Y[rows]})
            total += loss * len(rows)
            t += 1
            for p, g in zip(NET.params, grads):
                k = p.name
                m[k] = 0.8 * m[k] + 0.2 * g
                v[k] = 0.95 * v[k] + 0.05 * g * g
                m_hat, v_hat = m[k] / (1 - 0.8**t), v[k] / (1 - 0.95**t)
                params[k] = params[k] - lr * m_hat / (np.sqrt(v_hat) + 1e-8)
        losses.append(total / len(y))
    history = trainer.fit(X, y, epochs=2)
    assert trainer.steps == t == 6
    assert history["lr"] == [0.02, 0.01]
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-12)
    for k in params:
        np.testing.assert_allclose(trainer.params[k], params[k], rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(trainer.opt_state[f"{k}:m"], m[k], rtol=1e-10, atol=1e-13)


def test_resume_from_a_checkpoint_is_bit_identical(tmp_path):
    X, y = blobs()
    Xv, yv = blobs(20, seed=1)
    straight = make(seed=3)
    straight.fit(X, y, epochs=5, validation_data=(Xv, yv))

    path = tmp_path / "run.npz"
    first = make(seed=3, checkpoint=path)
    first.fit(X, y, epochs=2, validation_data=(Xv, yv))
    assert load_checkpoint(path).meta["epoch"] == 2
    resumed = make(seed=99, checkpoint=path)  # a different init: everything comes from the file
    resumed.fit(X, y, epochs=5, validation_data=(Xv, yv), resume=True)

    assert resumed.epoch == straight.epoch == 5 and resumed.steps == straight.steps
    for k in straight.params:
        assert np.array_equal(resumed.params[k], straight.params[k]), k
    for k in straight.opt_state:
        assert np.array_equal(resumed.opt_state[k], straight.opt_state[k]), k
    assert _comparable(resumed.history) == _comparable(straight.history)
    assert load_checkpoint(path).meta["epoch"] == 5


def test_a_nan_loss_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    X, y = blobs()
    path = tmp_path / "run.npz"
    # From the third epoch on the learning rate is absurd: parameters overflow, the loss is NaN.
    trainer = make(checkpoint=path, schedule=lambda epoch, step: 0.02 if epoch < 2 else 1e308)
    trainer.fit(X, y, epochs=2)
    good = path.read_bytes()
    good_params = trainer.params.copy()
    with pytest.raises(NonFiniteLossError, match=r"loss is (nan|inf) at step \d+ \(epoch 3") as err:
        trainer.fit(X, y, epochs=6)
    assert err.value.step > 6 and err.value.epoch == 3
    assert err.value.checkpoint == path and str(path) in str(err.value)
    assert path.read_bytes() == good
    for k, a in good_params.items():  # parameters are back at the last good epoch
        assert np.array_equal(trainer.params[k], a)


def test_bad_data_fails_clearly_before_anything_is_compiled(monkeypatch):
    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled before checking the data")

    monkeypatch.setattr(sg, "compile_step", no_compiling)
    monkeypatch.setattr(sg, "compile", no_compiling)
    X, y = blobs()
    trainer = make()
    bad = y.copy()
    bad[7] = 3
    with pytest.raises(DataError, match=r"label 3 at y\[7\] is out of range"):
        trainer.fit(X, bad)
    with pytest.raises(sg.ShapeError, match="40 examples .* 39 labels"):
        trainer.fit(X, y[:-1])
    with pytest.raises(sg.ShapeError, match="5 features .* takes 4"):
        trainer.fit(np.hstack([X, X[:, :1]]), y)
    with pytest.raises(DataError, match="out of range"):
        trainer.fit(X, y, validation_data=(X, bad))
    assert trainer.steps == 0


def test_early_stopping_restores_the_best_epoch():
    X, _ = blobs(60)
    rng = np.random.default_rng(1)
    noise_train, noise_val = rng.integers(0, 3, 60), rng.integers(0, 3, 60)
    trainer = make(patience=3, seed=2)
    history = trainer.fit(X, noise_train, epochs=200, validation_data=(X, noise_val))
    assert trainer.stopped_early and len(history["val_loss"]) < 200
    best = int(np.argmin(history["val_loss"]))
    assert len(history["val_loss"]) == best + 1 + 3
    assert trainer.best["epoch"] == best + 1
    assert trainer.evaluate(X, noise_val)["loss"] == pytest.approx(history["val_loss"][best])


@pytest.mark.parametrize("method", ["L-BFGS-B", "CG"])
def test_full_batch_scipy_training(method):
    X, y = blobs()
    trainer = make()
    before = trainer.evaluate(X, y)["loss"]
    result = trainer.fit_full_batch(X, y, method=method, maxiter=300)
    after = trainer.evaluate(X, y)
    assert after["loss"] == pytest.approx(result.fun, rel=1e-12) and after["loss"] < before / 3
    assert np.linalg.norm(result.jac) < 1e-3
    assert after["accuracy"] >= 0.95 and len(result.history) == result.nit


def test_predict_evaluate_and_the_progress_bar(capsys):
    X, y = blobs()
    trainer = make(progress=True)
    trainer.fit(X, y, epochs=3, validation_data=(X, y))
    err = capsys.readouterr().err
    assert "step/s" in err and "loss=" in err and "val_acc=" in err and "epoch 3/3" in err
    result = trainer.evaluate(X, y)
    assert result["accuracy"] == pytest.approx(np.mean(trainer.predict(X) == y))
    assert trainer.history["val_accuracy"][-1] == pytest.approx(result["accuracy"])


def test_float32_training_of_a_linear_model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    W = np.array([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]])
    Y = X @ W + 0.5
    trainer = Trainer(
        MLP([3, 2], output="linear"), Adam(lr=0.05), dtype="float32", batch_size=16, progress=False
    )
    history = trainer.fit(X, Y, epochs=60)
    assert trainer.params["W1"].dtype == np.float32
    assert history["loss"][-1] < 1e-3 < history["loss"][0]
    np.testing.assert_allclose(trainer.params["W1"], W, atol=0.05)
