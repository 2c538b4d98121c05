"""The fused training step equals value_and_grad followed by the update in NumPy."""

import re

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.compiler.step import UpdateRule

n = sp.Symbol("n")
X = sp.MatrixSymbol("X", n, 3)
Y = sp.MatrixSymbol("Y", n, 2)
W1 = sp.MatrixSymbol("W1", 3, 5)
b1 = sp.MatrixSymbol("b1", 1, 5)
W2 = sp.MatrixSymbol("W2", 5, 2)
H = (X * W1 + sp.OneMatrix(n, 1) * b1).applyfunc(sp.tanh)
R = H * W2 - Y
LOSS = sp.Trace(R.T * R) / (2 * n) + sp.Rational(1, 100) * sp.Trace(W1.T * W1)
PARAMS = [W1, b1, W2]

p, g, m, v = sp.symbols("p g m v")
lr, b1_, b2_, eps, t = sp.symbols("lr beta1 beta2 eps t")
ADAM = UpdateRule(
    param=p,
    grad=g,
    states=[("m", m), ("v", v)],
    hypers=[lr, b1_, b2_, eps, t],
    updates=[
        (m, b1_ * m + (1 - b1_) * g),
        (v, b2_ * v + (1 - b2_) * g**2),
        (p, p - lr * (m / (1 - b1_**t)) / (sp.sqrt(v / (1 - b2_**t)) + eps)),
    ],
)
HYPER = {"opt:lr": 0.01, "opt:beta1": 0.9, "opt:beta2": 0.999, "opt:eps": 1e-8}


@pytest.fixture(scope="module")
def step():
    return sg.compile_step(LOSS, PARAMS, ADAM)


@pytest.fixture(scope="module")
def vg():
    return sg.compile(LOSS, wrt=PARAMS)


def _init(seed=0):
    rng = np.random.default_rng(seed)
    data = {"X": rng.normal(size=(7, 3)), "Y": rng.normal(size=(7, 2))}
    params = {
        "W1": rng.normal(size=(3, 5)),
        "b1": rng.normal(size=(1, 5)),
        "W2": rng.normal(size=(5, 2)),
    }
    state = {f"{k}:{s}": np.zeros_like(a) for k, a in params.items() for s in ("m", "v")}
    return data, params, state


def test_fused_adam_step_matches_numpy_update(step, vg):
    data, params, state = _init()
    ref = {k: a.copy() for k, a in params.items()}
    ref_state = {k: a.copy() for k, a in state.items()}
    for k in range(1, 4):
        loss = step({**data, **params, **state, **HYPER, "opt:t": float(k)})
        ref_loss, grads = vg.value_and_grad({**data, **ref})
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        for name, gr in zip(["W1", "b1", "W2"], grads):
            mm = ref_state[f"{name}:m"] = 0.9 * ref_state[f"{name}:m"] + 0.1 * gr
            vv = ref_state[f"{name}:v"] = 0.999 * ref_state[f"{name}:v"] + 0.001 * gr**2
            mhat, vhat = mm / (1 - 0.9**k), vv / (1 - 0.999**k)
            ref[name] = ref[name] - 0.01 * mhat / (np.sqrt(vhat) + 1e-8)
        for name in ref:
            np.testing.assert_allclose(params[name], ref[name], rtol=1e-12, atol=1e-14)
        for name in ref_state:
            np.testing.assert_allclose(state[name], ref_state[name], rtol=1e-12, atol=1e-14)


def test_parameters_must_be_writeable_arrays_of_the_dtype(step):
    data, params, state = _init()
    params["W1"] = params["W1"].astype(np.float32)
    with pytest.raises(sg.InputError, match="W1"):
        step({**data, **params, **state, **HYPER, "opt:t": 1.0})


def test_global_norm_clipping_bounds_the_update():
    sgd = UpdateRule(param=p, grad=g, hypers=[lr], updates=[(p, p - lr * g)])
    clipped = sg.compile_step(LOSS, PARAMS, sgd, clip_norm=True)
    vg = sg.compile(LOSS, wrt=PARAMS)
    data, params, _ = _init(1)
    before = {k: a.copy() for k, a in params.items()}
    _, grads = vg.value_and_grad({**data, **params})
    norm = np.sqrt(sum(float(np.sum(gr**2)) for gr in grads))
    limit = norm / 4
    clipped({**data, **params, "opt:lr": 1.0, "opt:clip_norm": limit})
    delta = np.sqrt(sum(float(np.sum((params[k] - before[k]) ** 2)) for k in params))
    assert delta == pytest.approx(limit, rel=1e-10)
    for name, gr in zip(["W1", "b1", "W2"], grads):
        np.testing.assert_allclose(before[name] - params[name], gr / 4, rtol=1e-10)


def test_updates_are_written_straight_into_the_parameters(step):
    # The fused update loops write each new element over the old one: no temporary the size of
    # a parameter and no copy loop after the computation.
    # (A nest repeated for several parameters is one helper, ``_loop<k>``, called with each.)
    source = step.source
    names = step.input_names
    for param in ("W1", "W2", "W1:m", "W2:v"):
        arg = f"arg{names.index(param)}"
        assert any(
            re.search(rf"^\s+{target}\[[iv]\d+, [iv]\d+\] = v\d+$", source, re.M)
            for target in _names_written_as(arg, source)
        ), param
    assert not re.search(r"^\s+arg\d+\[i\d+, i\d+\] = t\d+\[", source, re.M)
    assert not re.search(r"^\s+a\d+\[v\d+, v\d+\] = a\d+\[", source, re.M)


def _names_written_as(arg: str, source: str) -> list[str]:
    """``arg`` itself and the helper parameters it is passed as."""
    names = [arg]
    for helper, args in re.findall(r"^\s+(_loop\d+)\((.*)\)$", source, re.M):
        args = [a.strip() for a in args.split(",")]
        if arg in args:
            params = re.search(rf"^def {helper}\((.*)\):$", source, re.M).group(1).split(", ")
            names.append(params[args.index(arg)])
    return names
