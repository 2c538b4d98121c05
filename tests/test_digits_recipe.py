"""examples/mlp_digits.py gives symgrad and scikit-learn the same recipe.

From the same initial parameters, in the same batch order, symgrad's trainer and scikit-learn's
``MLPClassifier`` as the example builds them take the same Adam steps (to rounding), and symgrad's
biases start in scikit-learn's Glorot range rather than at zero.
"""

import functools
import warnings

import numpy as np
import pytest
from example_modules import load_example


@pytest.fixture(scope="module")
def digits():
    return load_example("mlp_digits")


@pytest.mark.slow
def test_symgrad_and_sklearn_take_the_same_steps(digits, monkeypatch):
    """Full batches only (192 = 6 × 32 rows) and ε ≈ 0 on both sides: the two differences left
    on purpose (scikit-learn's L2 on a smaller last batch, and where Adam adds ε) drop out, and
    everything else (L2 scaling, unpenalised biases, mean loss, Adam) must agree exactly."""
    from symgrad.runtime import batching

    args = digits.parse_args([])
    X_train, _, y_train, _ = digits.load_split(0)
    X, y = X_train[:192], y_train[:192]
    epochs, eps = 3, 1e-20

    # The same batch order: no shuffling on either side.
    monkeypatch.setattr(
        "symgrad.runtime.trainer.Batches", functools.partial(batching.Batches, shuffle=False)
    )
    trainer = digits.make_trainer(args, seed=0)
    trainer.optimizer.hypers["eps"] = eps
    start = trainer.params.copy()
    clf = digits.make_classifier(args, seed=0)
    clf.set_params(shuffle=False, epsilon=eps, max_iter=1, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning
        clf.fit(X, y)  # builds the network; then start it from symgrad's parameters
        clf.coefs_ = [start["W1"].copy(), start["W2"].copy()]
        clf.intercepts_ = [start["b1"][0].copy(), start["b2"][0].copy()]
        clf.set_params(max_iter=epochs).fit(X, y)  # a fresh Adam, warm-started parameters
    history = trainer.fit(X, y, epochs=epochs)

    np.testing.assert_allclose(history["loss"], clf.loss_curve_[-epochs:], rtol=1e-12)
    theirs = {"W1": clf.coefs_[0], "W2": clf.coefs_[1]}
    theirs |= {"b1": clf.intercepts_[0][None], "b2": clf.intercepts_[1][None]}
    for name, value in theirs.items():
        assert np.abs(value - start[name]).max() > 1e-3  # both really trained
        np.testing.assert_allclose(trainer.params[name], value, rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.slow
def test_biases_start_in_sklearns_glorot_range(digits):
    """scikit-learn draws intercepts from U(−a, a), a = √(6 / (fan_in + fan_out)), like the
    weights; symgrad's MLP would start them at zero."""
    args = digits.parse_args([])
    X_train, _, y_train, _ = digits.load_split(0)
    clf = digits.make_classifier(args, seed=0)
    clf.set_params(max_iter=1, learning_rate_init=1e-12)  # one epoch that leaves the init as is
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X_train, y_train)
    first, second = digits.make_trainer(args, seed=0), digits.make_trainer(args, seed=1)
    sizes = first.model.sizes
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        ours, theirs = first.params[f"b{k}"], clf.intercepts_[k - 1]
        assert ours.shape == (1, fan_out)
        for b in (ours, theirs):
            assert np.abs(b).max() <= bound
            assert np.abs(b).max() > 0.6 * bound  # spread over the range, not zero
            assert abs(np.mean(b)) < 0.5 * bound
        assert not np.array_equal(ours, second.params[f"b{k}"])  # seeded


@pytest.mark.slow
def test_trainer_counts_the_evaluation_compile_once(digits, monkeypatch):
    """The example prints ``wall (compile, training)``: building the evaluation function inside
    ``fit`` used to be added to ``compile_seconds`` twice, so compile + training exceeded wall."""
    import time

    from symgrad.runtime.evaluator import Evaluator

    build, delay = Evaluator.compiled.fget, 0.3

    def slow_build(self):
        if self._compiled is None:
            time.sleep(delay)
        return build(self)

    monkeypatch.setattr(Evaluator, "compiled", property(slow_build))
    X_train, X_test, y_train, y_test = digits.load_split(0)
    trainer = digits.make_trainer(digits.parse_args([]), seed=0)
    trainer.compiled_step()
    before = trainer.compile_seconds
    t0 = time.perf_counter()
    trainer.fit(X_train[:64], y_train[:64], epochs=1, validation_data=(X_test, y_test))
    wall = time.perf_counter() - t0
    assert delay <= trainer.compile_seconds - before <= wall
    assert trainer.compile_seconds - before + trainer.train_seconds <= wall
