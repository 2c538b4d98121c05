"""The window name tagger (examples/window_tagger.py): both losses' gradients against finite
differences with padded windows, its labels against the play parser's, the threshold and
metric helpers, and an end-to-end run on a slice of the text."""

from __future__ import annotations

import numpy as np
import pytest
from example_modules import load_example

import symgrad as sg
from symgrad.runtime import plays
from symgrad.runtime.text import data_dir
from symgrad.testing import check_grad

wt = load_example("window_tagger")

TEXT = data_dir() / plays.SHAKESPEARE_FILE
needs_text = pytest.mark.skipif(not TEXT.exists(), reason=f"{TEXT} is missing")
MODEL = wt.TaggerModel()


def tiny_inputs(rng, rows=4, vocab=6, d=2, dc=2, hidden=3) -> dict:
    """Small arrays for every input of both losses; windows with -1 padding at both ends."""
    ids = rng.integers(0, vocab, size=(rows, wt.WINDOW))
    ids[0, :2], ids[1, -1] = -1, -1
    caps = rng.integers(0, wt.N_CAPS, size=(rows, wt.WINDOW))
    caps[ids < 0] = -1
    ids_c = ids.copy()
    ids_c[:, wt.CENTRE] = rng.integers(0, vocab, size=rows)
    caps_c = caps.copy()
    caps_c[:, wt.CENTRE] = rng.integers(0, wt.N_CAPS, size=rows)
    return {
        "E": rng.normal(size=(vocab, d)), "K": rng.normal(size=(wt.N_CAPS, dc)),
        "W": rng.normal(size=(wt.WINDOW * d, hidden)),
        "W_c": rng.normal(size=(wt.WINDOW * dc, hidden)),
        "b": rng.normal(size=(1, hidden)), "u": rng.normal(size=(hidden, 1)),
        "U": rng.normal(size=(hidden, 2)), "c": rng.normal(size=(1, 2)),
        "ids": ids, "caps": caps, "ids_c": ids_c, "caps_c": caps_c,
        "Y": np.eye(2)[rng.integers(0, 2, size=rows)],
    }  # fmt: skip


@pytest.fixture(scope="module")
def margin_f():
    return sg.compile(MODEL.margin_loss(), wrt=MODEL.params("margin", False))


@pytest.fixture(scope="module")
def softmax_f():
    return sg.compile(MODEL.softmax_loss(), wrt=MODEL.params("softmax", False))


def _only(values: dict, names) -> dict:
    return {k: values[k] for k in names}


MARGIN_INPUTS = ["E", "K", "W", "W_c", "b", "u", "ids", "caps", "ids_c", "caps_c"]
SOFTMAX_INPUTS = ["E", "K", "W", "W_c", "b", "U", "c", "ids", "caps", "Y"]


@pytest.mark.parametrize("seed", [0, 1])
def test_margin_loss_gradient_matches_finite_differences(margin_f, seed):
    values = _only(tiny_inputs(np.random.default_rng(seed)), MARGIN_INPUTS)
    # Scale the score so that some pairs violate the margin and some do not.
    values["u"] = values["u"] * 0.3
    check_grad(margin_f, values)


def test_margin_loss_value(margin_f):
    values = _only(tiny_inputs(np.random.default_rng(2)), MARGIN_INPUTS)

    def score(ids, caps):
        words = np.where(ids[..., None] >= 0, values["E"][np.maximum(ids, 0)], 0.0)
        cases = np.where(caps[..., None] >= 0, values["K"][np.maximum(caps, 0)], 0.0)
        pre = (words.reshape(len(ids), -1) @ values["W"] + cases.reshape(len(ids), -1)
               @ values["W_c"] + values["b"])  # fmt: skip
        return np.tanh(pre) @ values["u"]

    s, s_c = score(values["ids"], values["caps"]), score(values["ids_c"], values["caps_c"])
    expected = np.maximum(0.0, 1.0 - s + s_c).mean()
    assert float(margin_f(values)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_softmax_loss_gradient_matches_finite_differences(softmax_f, seed):
    values = _only(tiny_inputs(np.random.default_rng(seed)), SOFTMAX_INPUTS)
    check_grad(softmax_f, values)


def test_frozen_embeddings_are_not_parameters():
    assert MODEL.E not in MODEL.params("margin", freeze_embeddings=True)
    assert MODEL.E in MODEL.params("softmax", freeze_embeddings=False)


def test_caps_classes():
    got = [wt.caps_class(t) for t in ["romeo", "Romeo", "ROMEO", "O", ",", "o'er", "I"]]
    assert got == [wt.LOWER, wt.CAPITALISED, wt.ALL_CAPS, wt.CAPITALISED, wt.NO_LETTERS,
                   wt.LOWER, wt.CAPITALISED]  # fmt: skip


def test_precision_recall_f1():
    m = wt.precision_recall_f1(np.array([1, 1, 0, 0, 1]), np.array([1, 0, 1, 0, 1]))
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert wt.precision_recall_f1(np.zeros(3), np.zeros(3))["f1"] == 0.0


def test_best_threshold_separates_and_respects_ties():
    scores = np.array([0.1, 0.9, 0.4, 0.8, 0.2])
    labels = np.array([0, 1, 0, 1, 0])
    t = wt.best_threshold(scores, labels)
    assert 0.4 < t < 0.8
    # A positive tied with a negative: the cut never splits a tie, so it falls below both.
    assert wt.best_threshold(np.array([0.5, 0.1, 0.5]), np.array([0, 0, 1])) == pytest.approx(0.3)


def test_drop_words_keeps_padding():
    ids = np.array([[-1, 3, 4, 5, -1]] * 200)
    dropped = wt.drop_words(ids, unk_id=0, rate=0.5, rng=np.random.default_rng(0))
    assert (dropped[:, [0, 4]] == -1).all()
    assert 0.3 < (dropped[:, 1:4] == 0).mean() < 0.7


@needs_text
def test_windows_stay_inside_their_line():
    data = wt.load_tagging_data(TEXT, 20)
    from symgrad.runtime.words import WordVocab

    vocab = WordVocab.build([t for line in data.tokens for t in line])
    windows = wt.make_windows(data, np.arange(20), vocab)
    first = data.tokens[0]
    assert windows.ids[0].tolist()[:2] == [-1, -1]
    assert windows.ids[0, wt.CENTRE] == vocab.id(first[0])
    assert windows.ids[len(first) - 1, wt.CENTRE + 1] == -1
    assert len(windows.labels) == sum(len(t) for t in data.tokens)


@needs_text
@pytest.mark.slow
def test_example_runs_on_a_slice_with_labels_from_the_text():
    lines = 400
    out = wt.main(["--lines", str(lines), "--epochs", "1", "--dim", "8", "--hidden", "8",
                   "--no-progress", "--dtype", "float64"])  # fmt: skip
    speeches = plays.read_speeches(TEXT)
    dialogue = plays.dialogue_lines(speeches)[:lines]
    _, expected = plays.name_tags(dialogue, plays.speaker_names(speeches))
    assert out["labels"] == [lab.tolist() for lab in expected]
    assert sum(map(sum, out["labels"])) > 0  # the slice does contain names
    assert 0.0 <= out["base_rate"] < 0.1
    for objective in ("margin", "softmax"):
        metrics = out[objective]
        for key in ("precision", "recall", "f1", "threshold"):
            assert np.isfinite(metrics[key])
        assert 0.0 <= metrics["f1"] <= 1.0


@needs_text
@pytest.mark.slow
def test_frozen_embeddings_stay_at_their_initial_values():
    args = ["--lines", "200", "--epochs", "1", "--dim", "8", "--hidden", "8", "--no-progress",
            "--dtype", "float64", "--objectives", "softmax"]  # fmt: skip
    frozen = wt.main([*args, "--freeze-embeddings"])["softmax"]["arrays"]
    trained = wt.main(args)["softmax"]["arrays"]
    initial = wt.init_arrays(len(frozen["E"]), wt.parse_args(args), np.float64)["E"]
    np.testing.assert_array_equal(frozen["E"], initial)
    assert not np.array_equal(trained["E"], initial)
