"""The neural probabilistic language model (examples/nplm.py): its loss against NumPy and its
gradient against finite differences, with and without direct connections and with padded
contexts; the context/target alignment; an end-to-end run on a slice of the text."""

from __future__ import annotations

import numpy as np
import pytest
from example_modules import load_example

import symgrad as sg
from symgrad.runtime import plays
from symgrad.runtime.text import data_dir
from symgrad.runtime.words import WordVocab
from symgrad.testing import check_grad

nplm = load_example("nplm")

TEXT = data_dir() / plays.SHAKESPEARE_FILE
needs_text = pytest.mark.skipif(not TEXT.exists(), reason=f"{TEXT} is missing")
MODELS = {direct: nplm.NPLM(direct) for direct in (False, True)}


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "direct"])
def model_and_f(request):
    model = MODELS[request.param]
    return model, sg.compile(model.loss(), wrt=model.params())


def tiny_inputs(direct: bool, seed: int, rows=5, vocab=7, d=2, k=3, hidden=3) -> dict:
    rng = np.random.default_rng(seed)
    context = rng.integers(0, vocab, size=(rows, k))
    context[0, :] = -1  # the first token of a stream: no history at all
    context[1, :2] = -1
    values = {
        "C": rng.normal(size=(vocab, d)), "H": rng.normal(size=(k * d, hidden)),
        "d": rng.normal(size=(1, hidden)), "U": rng.normal(size=(hidden, vocab)),
        "b": rng.normal(size=(1, vocab)), "context": context,
        "Y": np.eye(vocab)[rng.integers(0, vocab, size=rows)],
    }  # fmt: skip
    if direct:
        values["W"] = rng.normal(size=(k * d, vocab))
    return values


def numpy_loss(values: dict) -> float:
    context = values["context"]
    rows = np.where(context[..., None] >= 0, values["C"][np.maximum(context, 0)], 0.0)
    x = rows.reshape(len(context), -1)
    logits = values["b"] + np.tanh(x @ values["H"] + values["d"]) @ values["U"]
    if "W" in values:
        logits = logits + x @ values["W"]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-(values["Y"] * log_probs).sum() / len(context))


@pytest.mark.parametrize("seed", [0, 1])
def test_loss_value_and_gradient(model_and_f, seed):
    model, f = model_and_f
    values = tiny_inputs(model.direct, seed)
    assert float(f(values)) == pytest.approx(numpy_loss(values), rel=1e-12)
    check_grad(f, values)


def test_contexts_are_the_previous_ids_padded_at_the_start():
    stream = np.array([5, 6, 7, 8, 9])
    contexts, targets = nplm.examples(stream, 3)
    assert contexts.tolist() == [[-1, -1, -1], [-1, -1, 5], [-1, 5, 6], [5, 6, 7], [6, 7, 8]]
    assert targets.tolist() == stream.tolist()


def test_token_stream_ends_lines_and_maps_rare_words_to_unk():
    vocab = WordVocab.build("the king the king the".split(), min_count=2, boundaries=True)
    stream = vocab.decode(nplm.token_stream(["The king", "the queen"], vocab))
    assert stream == ["the", "king", "</s>", "the", "<unk>", "</s>"]


def test_initial_bias_is_the_unigram_model():
    counts = np.array([0.0, 3.0, 1.0, 0.0])
    args = nplm.parse_args(["--dtype", "float64", "--context", "2", "--dim", "2"])
    b = nplm.init_arrays(4, counts, args)["b"][0]
    np.testing.assert_allclose(np.exp(b), (counts + 1) / 8)


@needs_text
@pytest.mark.slow
def test_example_runs_on_a_slice_and_beats_uniform():
    out = nplm.main(["--lines", "400", "--epochs", "1", "--dim", "8", "--hidden", "16",
                     "--no-progress", "--min-count", "2"])  # fmt: skip
    V = out["vocab_size"]
    assert 50 < V < 2000
    assert np.isfinite(out["perplexity"]) and out["perplexity"] < V
    assert np.isfinite(out["unigram"]) and all(np.isfinite(list(out["kneser_ney"].values())))
    assert len(out["history"]) == 1 and np.isfinite(out["history"][0]["train_nll"])
