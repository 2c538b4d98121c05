"""Cell builders (Elman, GRU, LSTM) against finite differences, masking, and the char-LM example.

Each builder is compiled once (with a mask sequence, so the masking test reuses it); a cold
Numba compile of an LSTM step takes tens of seconds, hence the tiny sizes and module fixtures.
"""

import numpy as np
import pytest
from example_modules import load_example

import symgrad as sg
from symgrad.runtime import cells
from symgrad.runtime.text import Vocab, one_hot, random_batch, split, unigram_cross_entropy

D, H = 3, 2
BUILDERS = {
    "elman_sigmoid": lambda: cells.elman(D, H, activation="sigmoid", mask=True),
    "elman_tanh": lambda: cells.elman(D, H, activation="tanh", mask=True),
    "gru": lambda: cells.gru(D, H, mask=True),
    "lstm": lambda: cells.lstm(D, H, mask=True),
}
_COMPILED: dict = {}


def compiled(name):
    """The builder's model and ``[loss, *final states]`` compiled w.r.t. parameters and initial
    states (once: the final states serve the chunking test at no extra compile)."""
    if name not in _COMPILED:
        model = BUILDERS[name]()
        exprs = [model.loss, *model.finals]
        _COMPILED[name] = model, sg.compile(exprs, wrt=model.params + model.initial)
    return _COMPILED[name]


def loss_and_grads(f, values):
    (loss, *_), grads = f.value_and_grad(values)
    return loss, grads


def inputs(model, rng, steps, batch=2):
    values = {k: v + 0.1 * rng.normal(size=v.shape) for k, v in model.init_params(rng).items()}
    values.update({s: rng.normal(size=a.shape) * 0.5 for s, a in model.zero_states(batch).items()})
    values["X"] = rng.normal(size=(steps, batch, D))
    values["Y"] = one_hot(rng.integers(0, D, size=(steps, batch)), D)
    values["M"] = np.ones((steps, batch, 1))
    return values


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("steps", [1, 3])
def test_loss_gradient_matches_central_differences(name, steps):
    model, f = compiled(name)
    rng = np.random.default_rng(steps)
    values = inputs(model, rng, steps)
    loss, grads = loss_and_grads(f, values)
    assert np.isfinite(loss)
    eps = 1e-6
    for sym, g in zip(model.params + model.initial, grads):
        flat = values[sym.name].reshape(-1)
        assert g.shape == values[sym.name].shape
        for k in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            old = flat[k]
            flat[k] = old + eps
            up = f(values)[0]
            flat[k] = old - eps
            down = f(values)[0]
            flat[k] = old
            numeric = (up - down) / (2 * eps)
            assert g.reshape(-1)[k] == pytest.approx(numeric, rel=1e-6, abs=1e-9), (sym, k)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_padding_with_mask_zero_changes_nothing(name):
    model, f = compiled(name)
    rng = np.random.default_rng(11)
    values = inputs(model, rng, 3)
    loss, grads = loss_and_grads(f, values)
    padded = dict(values)
    padded["X"] = np.concatenate([values["X"], rng.normal(size=(2, 2, D))])
    padded["Y"] = np.concatenate([values["Y"], one_hot(rng.integers(0, D, size=(2, 2)), D)])
    padded["M"] = np.concatenate([values["M"], np.zeros((2, 2, 1))])
    loss_p, grads_p = loss_and_grads(f, padded)
    assert loss_p == pytest.approx(loss, rel=1e-13)
    for g, gp in zip(grads, grads_p):
        np.testing.assert_allclose(gp, g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_carrying_final_states_across_chunks_equals_one_pass(name):
    """Truncated BPTT's forward: chunk losses add up and the carried states continue exactly."""
    model, f = compiled(name)
    values = inputs(model, np.random.default_rng(9), 5)
    loss, *finals = f(values)
    first = {**values, **{k: values[k][:2] for k in ("X", "Y", "M")}}
    loss1, *carried = f(first)
    second = {**values, **{k: values[k][2:] for k in ("X", "Y", "M")}}
    second.update(zip(model.state_names, carried))
    loss2, *finals2 = f(second)
    assert loss1 + loss2 == pytest.approx(loss, rel=1e-12)
    for a, b in zip(finals2, finals):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_mask_zeroes_single_rows():
    """Unequal lengths in one batch: a row masked at a step drops out of that step's loss."""
    model, f = compiled("elman_sigmoid")
    rng = np.random.default_rng(5)
    values = inputs(model, rng, 3, batch=2)
    values["M"][2, 1] = 0.0
    other = {**values, "Y": values["Y"].copy()}
    other["Y"][2, 1] = one_hot(np.array([(values["Y"][2, 1].argmax() + 1) % D]), D)[0]
    loss, grads = loss_and_grads(f, values)
    loss_o, grads_o = loss_and_grads(f, other)
    assert loss_o == pytest.approx(loss, rel=1e-13)
    for g, go in zip(grads, grads_o):
        np.testing.assert_allclose(go, g, rtol=1e-12, atol=1e-15)


def test_elman_matches_numpy_forward():
    model, f = compiled("elman_sigmoid")
    rng = np.random.default_rng(2)
    v = inputs(model, rng, 4)
    h, ref = v["h0"], 0.0
    for t in range(4):
        h = 1 / (1 + np.exp(-(h @ v["H"] + v["X"][t] @ v["W"] + v["b1"])))
        z = h @ v["U"] + v["b2"]
        log_p = z - z.max(1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
        ref -= (v["Y"][t] * log_p).sum() / 2
    assert f(v)[0] == pytest.approx(ref, rel=1e-12)
    np.testing.assert_allclose(f(v)[1], h, rtol=1e-12)


def test_text_helpers():
    vocab = Vocab.from_text("hello world")
    ids = vocab.encode("hello world")
    assert vocab.decode(ids) == "hello world"
    train, held = split(ids, 0.25)
    assert np.array_equal(np.concatenate([train, held]), ids) and len(held) == 3
    a = random_batch(ids, 4, 3, len(vocab), np.random.default_rng(1))
    b = random_batch(ids, 4, 3, len(vocab), np.random.default_rng(1))
    assert a[0].shape == (4, 3, len(vocab)) and np.array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[0][1:], a[1][:-1])
    assert np.all(a[0].sum(-1) == 1)
    uniform = unigram_cross_entropy(np.arange(4), np.arange(4), 4)
    assert uniform == pytest.approx(np.log(4))


@pytest.mark.slow
def test_char_lm_example_runs_end_to_end(tmp_path):
    char_lm = load_example("char_lm")
    text = tmp_path / "tiny.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 8, encoding="utf-8")
    out = char_lm.main(
        ["--cell", "elman", "--text", str(text), "--hidden", "8", "--steps", "2",
         "--seq-len", "8", "--batch", "4", "--sample-chars", "20", "--log-every", "1"]
    )  # fmt: skip
    assert out["steps"] == 2
    assert np.isfinite(out["held_out"]) and np.isfinite(out["unigram"])
    assert len(out["sample"]) == 21
    # The stdlib fallback corpus exists on every installation.
    assert len(char_lm.stdlib_corpus()) > 10_000
