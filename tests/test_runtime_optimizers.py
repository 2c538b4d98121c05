"""Each optimiser's first steps, fused into the compiled step, against NumPy written from the
formulas. The model is a small linear regression (``MLP([3, 2], output="linear")``) so each of
the optimiser graphs compiles quickly; the graphs are the ones the Trainer builds for it."""

import numpy as np
import pytest

import symgrad as sg
from symgrad.runtime import (
    MLP,
    SGD,
    Adagrad,
    Adam,
    Momentum,
    Nesterov,
    RMSprop,
)

NET = MLP([3, 2], output="linear")
OUTPUTS = [NET.loss, NET.outputs]

# Non-default hyperparameters, so that a rule reading the wrong one is caught.
OPTIMIZERS = {
    "SGD": SGD(lr=0.1),
    "Momentum": Momentum(lr=0.1, momentum=0.8),
    "Nesterov": Nesterov(lr=0.1, momentum=0.7),
    "Adagrad": Adagrad(lr=0.2, eps=1e-3),
    "RMSprop": RMSprop(lr=0.05, rho=0.7, eps=1e-3),
    "Adam": Adam(lr=0.05, beta1=0.8, beta2=0.9, eps=1e-3),
}


def reference(name, h, p, g, state, t):
    """One update of parameter ``p`` with gradient ``g``; ``state`` is updated in place."""
    if name == "SGD":
        return p - h["lr"] * g
    if name == "Momentum":
        state["v"] = h["momentum"] * state["v"] - h["lr"] * g
        return p + state["v"]
    if name == "Nesterov":
        v_old = state["v"]
        state["v"] = h["momentum"] * v_old - h["lr"] * g
        # Bengio et al. (2012): p + μ·v_new − lr·g, i.e. −μ·v_old + (1 + μ)·v_new
        return p - h["momentum"] * v_old + (1 + h["momentum"]) * state["v"]
    if name == "Adagrad":
        state["G"] = state["G"] + g * g
        return p - h["lr"] * g / (np.sqrt(state["G"]) + h["eps"])
    if name == "RMSprop":
        state["s"] = h["rho"] * state["s"] + (1 - h["rho"]) * g * g
        return p - h["lr"] * g / (np.sqrt(state["s"]) + h["eps"])
    if name == "Adam":
        state["m"] = h["beta1"] * state["m"] + (1 - h["beta1"]) * g
        state["v"] = h["beta2"] * state["v"] + (1 - h["beta2"]) * g * g
        m_hat = state["m"] / (1 - h["beta1"] ** t)
        v_hat = state["v"] / (1 - h["beta2"] ** t)
        return p - h["lr"] * m_hat / (np.sqrt(v_hat) + h["eps"])
    raise AssertionError(name)


@pytest.fixture(scope="module")
def value_and_grad():
    return sg.compile(OUTPUTS, wrt=NET.params)


def _data(seed=0, n=6):
    rng = np.random.default_rng(seed)
    return {"X": rng.normal(size=(n, 3)), "Y": rng.normal(size=(n, 2))}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_first_steps_match_the_formula(name, value_and_grad):
    opt = OPTIMIZERS[name]
    step = sg.compile_step(OUTPUTS, NET.params, opt.rule)
    data = _data()
    params = dict(NET.init_params(seed=1))
    state = opt.init_state(params)
    ref = {k: a.copy() for k, a in params.items()}
    ref_state = {k: {s: np.zeros_like(a) for s in opt.state_names} for k, a in params.items()}
    for k in range(4):
        loss, out = step({**data, **params, **state, **opt.hyper_values(step=k)})
        (ref_loss, ref_out), grads = value_and_grad.value_and_grad({**data, **ref})
        assert loss == pytest.approx(ref_loss, rel=1e-13)
        np.testing.assert_allclose(out, ref_out, rtol=1e-13)
        for p, g in zip(NET.params, grads):
            ref[p.name] = reference(name, opt.hypers, ref[p.name], g, ref_state[p.name], k + 1)
        for p in NET.params:
            np.testing.assert_allclose(params[p.name], ref[p.name], rtol=1e-12, atol=1e-15)
            for s in opt.state_names:
                np.testing.assert_allclose(
                    state[f"{p.name}:{s}"], ref_state[p.name][s], rtol=1e-12, atol=1e-15
                )


def test_float32_adam_step_matches_the_float64_formula(value_and_grad):
    opt = OPTIMIZERS["Adam"]
    step = sg.compile_step(OUTPUTS, NET.params, opt.rule, dtype="float32")
    data = _data(2)
    params = dict(NET.init_params(seed=3, dtype="float32"))
    state = opt.init_state(params)
    ref = {k: a.astype(np.float64) for k, a in params.items()}
    ref_state = {k: {s: np.zeros(a.shape) for s in opt.state_names} for k, a in params.items()}
    for k in range(3):
        step(
            {
                **{n: a.astype(np.float32) for n, a in data.items()},
                **params,
                **state,
                **opt.hyper_values(step=k),
            }
        )
        _, grads = value_and_grad.value_and_grad({**data, **ref})
        for p, g in zip(NET.params, grads):
            ref[p.name] = reference("Adam", opt.hypers, ref[p.name], g, ref_state[p.name], k + 1)
    for p in NET.params:
        assert params[p.name].dtype == np.float32
        np.testing.assert_allclose(params[p.name], ref[p.name], rtol=2e-5, atol=2e-6)


def test_trainer_clips_the_global_gradient_norm(value_and_grad):
    from symgrad.runtime import Trainer

    data = _data(4, n=8)
    trainer = Trainer(NET, SGD(lr=0.5), batch_size=8, clip_norm=0.1, seed=7, progress=False)
    before = {k: a.copy() for k, a in trainer.params.items()}
    _, grads = value_and_grad.value_and_grad({**data, **before})
    norm = np.sqrt(sum(float(np.sum(g * g)) for g in grads))
    assert norm > 0.1  # so the clip is active
    trainer.fit(data["X"], data["Y"], epochs=1)  # one full batch: row order does not matter
    for p, g in zip(NET.params, grads):
        expected = before[p.name] - 0.5 * g * (0.1 / norm)
        np.testing.assert_allclose(trainer.params[p.name], expected, rtol=1e-10, atol=1e-14)
