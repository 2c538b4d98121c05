"""The fastText classifier of ``examples/fasttext_classify.py``: loss gradients against finite
differences, the compiled SGD step against the hand-written NumPy step of
``examples/fasttext_numpy.py``, the Huffman tree's class probabilities against the compiled
hierarchical-softmax op, end-to-end runs, and a smoke run of ``benchmarks/bench_fasttext.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from example_modules import load_example

import symgrad as sg
from symgrad import nn
from symgrad.runtime.huffman import HuffmanTree
from symgrad.runtime.optimizers import SGD
from symgrad.runtime.text import data_dir
from symgrad.runtime.words import pad_bags
from symgrad.testing import check_grad

ROOT = Path(__file__).resolve().parent.parent
SHAKESPEARE = data_dir() / "tinyshakespeare.txt"
needs_text = pytest.mark.skipif(
    not SHAKESPEARE.exists(), reason=f"{SHAKESPEARE} is absent (set SYMGRAD_DATA_DIR)"
)


fc = load_example("fasttext_classify")
ref = load_example("fasttext_numpy")

ROWS, DIM = 9, 3  # a tiny table: ids repeat within and across bags
TREE = HuffmanTree(np.array([5, 1, 1, 3, 2]))  # 5 classes, 4 internal nodes, depths 2-3
CLASSES = len(TREE)


def tiny_batch(seed: int, lines: int = 4):
    """Bags of 1 to 4 ids (so most rows are padded), their 1/len weights and labels."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 5, size=lines)
    sizes[0], sizes[-1] = 4, 1  # at least one row full and one mostly padding
    ids, weights = pad_bags([rng.integers(0, ROWS, size=s) for s in sizes])
    return ids, weights, rng.integers(0, CLASSES, size=lines)


def tiny_params(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "E": rng.normal(0.0, 0.5, (ROWS, DIM)),
        "W": rng.normal(0.0, 0.5, (DIM, CLASSES)),
        "b": rng.normal(0.0, 0.5, (1, CLASSES)),
        "U": rng.normal(0.0, 0.5, (CLASSES - 1, DIM)),
    }


def data_inputs(kind: str, ids, weights, labels) -> dict[str, np.ndarray]:
    inputs = {"ids": ids, "bag_w": weights}
    if kind == "full":
        inputs["Y"] = np.eye(CLASSES)[labels]
    else:
        inputs["paths"], inputs["signs"] = TREE.paths[labels], TREE.signs[labels]
    return inputs


def param_names(kind: str) -> list[str]:
    return ["E", "W", "b"] if kind == "full" else ["E", "U"]


@pytest.fixture(scope="module")
def value_and_grads():
    """Per kind, the loss compiled with its gradients; the hierarchical one also returns the
    per-line NLL column."""
    full, full_params = fc.loss_and_params("full")
    hier, hier_params = fc.loss_and_params("hierarchical")
    nll = nn.hierarchical_softmax_nll(fc.U, fc.paths, fc.signs, fc.hidden())
    return {
        "full": sg.compile(full, wrt=full_params),
        "hierarchical": sg.compile([hier, nll], wrt=hier_params),
    }


@pytest.fixture(scope="module")
def steps():
    """The float64 steps the example compiles with ``--dtype float64`` (so it reuses them)."""
    return {
        kind: step
        for kind, (step, _) in fc.compile_steps(fc.SOFTMAX_KINDS, "float64", SGD()).items()
    }


@pytest.mark.parametrize("kind", fc.SOFTMAX_KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_gradients_match_finite_differences(value_and_grads, kind, seed):
    ids, weights, labels = tiny_batch(seed)
    params = tiny_params(seed)
    inputs = {
        **{n: params[n] for n in param_names(kind)},
        **data_inputs(kind, ids, weights, labels),
    }
    result = check_grad(value_and_grads[kind], inputs)
    assert max(result.max_error.values()) < 1e-6


@pytest.mark.parametrize("kind", fc.SOFTMAX_KINDS)
def test_loss_value_matches_numpy(value_and_grads, kind):
    ids, weights, labels = tiny_batch(3, lines=6)
    p = tiny_params(3)
    data = data_inputs(kind, ids, weights, labels)
    value = value_and_grads[kind]({**{n: p[n] for n in param_names(kind)}, **data})
    if kind == "full":
        want = ref.full_softmax_loss(p["E"], p["W"], p["b"], ids, weights, labels)
    else:
        value = value[0]
        want = ref.hierarchical_softmax_loss(
            p["E"], p["U"], ids, weights, data["paths"], data["signs"]
        )
    assert float(value) == pytest.approx(want, rel=1e-13)


@pytest.mark.parametrize("kind", fc.SOFTMAX_KINDS)
@pytest.mark.parametrize("seed", [0, 5])
def test_compiled_step_equals_numpy_step(steps, kind, seed):
    lr = 0.7
    ours, theirs = tiny_params(seed), tiny_params(seed)
    for t in range(4):
        ids, weights, labels = tiny_batch(10 * seed + t, lines=5)
        data = data_inputs(kind, ids, weights, labels)
        loss = steps[kind]({**{n: ours[n] for n in param_names(kind)}, **data, "opt:lr": lr})
        if kind == "full":
            want = ref.full_softmax_step(
                theirs["E"], theirs["W"], theirs["b"], ids, weights, labels, lr
            )
        else:
            want = ref.hierarchical_softmax_step(
                theirs["E"], theirs["U"], ids, weights, data["paths"], data["signs"], lr
            )
        assert float(loss) == pytest.approx(want, rel=1e-12)
        for name in param_names(kind):
            np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-12, atol=1e-14)
    # The steps did move every parameter (a step that changed nothing would pass the above).
    start = tiny_params(seed)
    for name in param_names(kind):
        assert np.abs(ours[name] - start[name]).max() > 1e-3


def test_numpy_step_leaves_untouched_rows_alone():
    p = tiny_params(0)
    E_before = p["E"].copy()
    ids = np.array([[1, 2, -1]])
    ref.full_softmax_step(
        p["E"], p["W"], p["b"], ids, np.array([[0.5, 0.5, 0.0]]), np.array([3]), 1.0
    )
    changed = np.flatnonzero(np.any(p["E"] != E_before, axis=1))
    assert changed.tolist() == [1, 2]  # not the last row, which -1 would alias


def test_tree_probabilities_sum_to_one_and_equal_the_compiled_nll(value_and_grads):
    f = value_and_grads["hierarchical"]
    ids, weights, _ = tiny_batch(7, lines=6)
    p = tiny_params(7)
    p["U"] *= 6.0  # sharp probabilities, far from uniform
    H = ref.bag_mean(p["E"], ids, weights)
    tree_log_probs = TREE.log_probs(p["U"], H)  # (lines, classes)
    compiled = np.empty_like(tree_log_probs)
    for c in range(CLASSES):
        classes = np.full(len(ids), c)
        _, nll = f({"E": p["E"], "U": p["U"], **data_inputs("hierarchical", ids, weights, classes)})
        compiled[:, c] = -nll[:, 0]
    np.testing.assert_allclose(np.exp(tree_log_probs).sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(compiled).sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(compiled), np.exp(tree_log_probs), rtol=1e-12, atol=1e-300)
    assert np.exp(tree_log_probs).max() > 0.5  # the check above is not between two uniforms
    np.testing.assert_array_equal(TREE.predict(p["U"], H), compiled.argmax(axis=1))


def _check_runs(runs, kinds, k):
    assert [r["softmax"] for r in runs] == list(kinds)
    for r in runs:
        assert r["k"] == k
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["majority"] <= 1.0
        assert np.isfinite(r["train_loss"]) and np.isfinite(r["held_loss"])
        assert r["train_seconds"] > 0 and r["steps"] > 0


@needs_text
def test_example_runs_end_to_end_on_a_small_slice(steps, capsys):
    result = fc.main(
        [
            "--limit",
            "300",
            "--k",
            "10",
            "--epochs",
            "1",
            "--dtype",
            "float64",
            "--buckets",
            "1000",
            "--no-progress",
        ]
    )
    _check_runs(result["runs"], fc.SOFTMAX_KINDS, 10)
    # One epoch from W = 0 cannot overfit 270 lines: the loss starts near log(10).
    for r in result["runs"]:
        assert r["train_loss"] == pytest.approx(np.log(10), rel=0.2)
    out = capsys.readouterr().out
    assert "held-out acc" in out and "majority" in out


def test_example_names_a_missing_text(tmp_path):
    missing = tmp_path / "no_such_play.txt"
    with pytest.raises(SystemExit, match="no_such_play.txt"):
        fc.main(["--text", str(missing), "--no-progress"])


@pytest.mark.slow
@needs_text
def test_example_beats_the_majority_baseline(steps):
    result = fc.main(["--k", "10", "--dtype", "float64", "--no-progress"])
    _check_runs(result["runs"], fc.SOFTMAX_KINDS, 10)
    for r in result["runs"]:
        assert r["accuracy"] > r["majority"] + 0.1, r
        assert r["train_loss"] < r["epoch_losses"][0]


@pytest.mark.slow
@needs_text
def test_benchmark_quick_writes_json(tmp_path):
    out = tmp_path / "fasttext.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_fasttext.py"),
            "--quick",
            "--batch",
            "1",
            "16",
            "--batches",
            "3",
            "--repeat",
            "2",
            "--min-time",
            "0.001",
            "--out",
            str(out),
        ],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "vs NumPy" in proc.stdout
    data = json.loads(out.read_text())
    assert data["benchmark"] == "fasttext" and data["quick"] is True
    assert data["thread_env"]["OPENBLAS_NUM_THREADS"] == "1"
    rows = data["rows"]
    assert {(r["batch"], r["softmax"]) for r in rows} == {
        (b, s) for b in (1, 16) for s in fc.SOFTMAX_KINDS
    }
    for r in rows:
        assert r["k"] == 10
        assert r["status"] == "ok", r  # every symgrad row agreed with NumPy's step
        assert r["examples_per_s"] > 0 and r["numpy_time_ratio"] > 0
        if r["contender"] == "NumPy (hand-written)":
            assert r["numpy_time_ratio"] == 1.0
