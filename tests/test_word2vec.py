"""word2vec (examples/word2vec.py): the skip-gram and CBOW losses have the right gradients, the
compiled sparse SGD step equals the hand-written NumPy step, the example trains end to end on a
slice of tiny Shakespeare, and the benchmark script runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from example_modules import load_example

import symgrad as sg
from symgrad.runtime.optimizers import SGD
from symgrad.runtime.text import data_dir
from symgrad.runtime.words import bag_weights
from symgrad.testing import check_grad

ROOT = Path(__file__).resolve().parents[1]
w2v = load_example("word2vec")

# Small sizes shared by every test, so each model's graphs are compiled once.
VOCAB, DIM, WINDOW, NEGATIVES = 7, 3, 2, 3
SHAKESPEARE = data_dir() / "tinyshakespeare.txt"


def batch(model: str, rows: int, rng) -> dict:
    """A batch over a tiny vocabulary: ids repeat within the batch, some rows are never used,
    CBOW contexts are padded with -1 (every row keeps at least one real id)."""
    targets = rng.integers(1, VOCAB - 1, size=(rows, 1 + NEGATIVES))  # rows 0, V-1 untouched
    signs = np.ones((rows, 1 + NEGATIVES))
    signs[:, 1:] = -1.0
    if model == "skipgram":
        inputs = rng.integers(1, VOCAB - 1, size=(rows, 1))
        return {"inputs": inputs, "targets": targets, "signs": signs, "weights": None}
    inputs = rng.integers(1, VOCAB - 1, size=(rows, 2 * WINDOW))
    lengths = rng.integers(1, 2 * WINDOW + 1, size=rows)
    inputs[np.arange(2 * WINDOW)[None, :] >= lengths[:, None]] = -1
    return {"inputs": inputs, "targets": targets, "signs": signs,
            "weights": bag_weights(inputs)}  # fmt: skip


def tables(rng):
    return rng.normal(size=(VOCAB, DIM)), rng.normal(size=(VOCAB, DIM))


@pytest.fixture(scope="module", params=w2v.MODELS)
def model(request):
    return request.param


@pytest.fixture(scope="module")
def losses():
    return {m: w2v.w2v_loss(m, WINDOW, NEGATIVES) for m in w2v.MODELS}


@pytest.fixture(scope="module")
def loss_functions(losses):
    return {m: sg.compile(loss, wrt=[w2v.E_IN, w2v.E_OUT]) for m, loss in losses.items()}


@pytest.fixture(scope="module")
def steps():
    return {m: w2v.CompiledStep(m, WINDOW, NEGATIVES, "float64") for m in w2v.MODELS}


def _inputs(E_in, E_out, data) -> dict:
    inputs = {"E_in": E_in, "E_out": E_out, **data}
    if inputs["weights"] is None:
        del inputs["weights"]
    return inputs


@pytest.mark.parametrize("seed", [0, 1])
def test_loss_value_and_gradient(model, loss_functions, seed):
    rng = np.random.default_rng(seed)
    E_in, E_out = tables(rng)
    data = batch(model, 5, rng)
    f = loss_functions[model]
    inputs = _inputs(E_in, E_out, data)
    check_grad(f, inputs)
    # The value is the NumPy reference's loss (its step returns the loss before updating).
    step = w2v.numpy_step(model)
    expected = step(E_in.copy(), E_out.copy(), data["inputs"], data["weights"],
                    data["targets"], data["signs"], 0.0)  # fmt: skip
    assert f(inputs) == pytest.approx(expected, rel=1e-13)
    # Sparse gradients: rows no example touches get exactly zero.
    _, (dE_in, dE_out) = f.value_and_grad(inputs)
    for grad, ids in ((dE_in, data["inputs"]), (dE_out, data["targets"])):
        untouched = np.setdiff1d(np.arange(VOCAB), ids)
        assert len(untouched) >= 2
        assert np.all(grad[untouched] == 0.0)
        assert np.all(np.abs(grad[np.unique(ids[ids >= 0])]).sum(axis=1) > 0)


def test_compiled_step_equals_the_numpy_step(model, steps):
    rng = np.random.default_rng(2)
    E_in, E_out = tables(rng)
    ref_in, ref_out = E_in.copy(), E_out.copy()
    numpy_step = w2v.numpy_step(model)
    for t, rows in enumerate([6, 1, 9, 4]):
        data = batch(model, rows, rng)
        lr = 0.5 / (t + 1)
        args = (data["inputs"], data["weights"], data["targets"], data["signs"], lr)
        loss = steps[model](E_in, E_out, *args)
        expected = numpy_step(ref_in, ref_out, *args)
        assert loss == pytest.approx(expected, rel=1e-13)
        np.testing.assert_allclose(E_in, ref_in, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(E_out, ref_out, rtol=1e-13, atol=1e-15)
    # The steps moved the tables, and only the rows the batches used.
    assert not np.allclose(E_out, tables(np.random.default_rng(2))[1])
    np.testing.assert_array_equal(E_out[[0, VOCAB - 1]],
                                  tables(np.random.default_rng(2))[1][[0, VOCAB - 1]])  # fmt: skip


def _table_row_dims(source: str, positions) -> set[str]:
    """The generated names bound to the row count of the tables (arguments at ``positions``)."""
    names = set()
    for k in positions:
        names |= set(re.findall(rf"(\w+) = arg{k}\.shape\[0\]", source))
    return names


def _table_sized_allocations(step) -> list[str]:
    names = step.input_names
    rows = _table_row_dims(step.source, [names.index("E_in"), names.index("E_out")])
    allocations = [line for line in step.source.splitlines()
                   if re.search(r"np\.(zeros|empty|full)\(", line)]  # fmt: skip
    return [line for line in allocations if any(re.search(rf"\b{r}\b", line) for r in rows)]


def test_sparse_step_allocates_no_vocabulary_sized_array(model, steps):
    step = steps[model].step
    assert _table_sized_allocations(step) == []


def test_the_allocation_check_sees_a_dense_step(losses):
    dense = sg.compile_step(losses["skipgram"], [w2v.E_IN, w2v.E_OUT], SGD().rule, sparse=False)
    assert _table_sized_allocations(dense)


@pytest.mark.skipif(not SHAKESPEARE.exists(), reason=f"{SHAKESPEARE} not found")
def test_example_trains_on_a_slice_of_shakespeare(model):
    out = w2v.main(
        ["--model", model, "--limit", "4000", "--epochs", "1", "--dim", "16", "--batch", "8",
         "--window", str(WINDOW), "--negatives", str(NEGATIVES), "--min-count", "3",
         "--dtype", "float64", "--numpy-share", "0.2", "--quiet",
         "--query", "king", "lord", "good", "notaword"]
    )  # fmt: skip
    assert len(out["epoch_losses"]) == 1 and np.isfinite(out["epoch_losses"][0])
    assert np.isfinite(out["loss_start"]) and out["loss_end"] < out["loss_start"]
    assert set(out["neighbours"]) == {w for w in ("king", "lord", "good") if w in out["vocab"]}
    assert out["neighbours"]
    for word, near in out["neighbours"].items():
        assert len(near) == 6 and word not in [w for w, _ in near]
        cosines = [c for _, c in near]
        assert cosines == sorted(cosines, reverse=True) and -1 <= min(cosines) <= 1
    # The NumPy reference trained on the same first examples reached the same vectors.
    assert out["compare_examples"] > 0 and out["numpy_max_abs_diff"] < 1e-10
    assert out["words_per_second"] > 0 and out["numpy_words_per_second"] > 0


def test_missing_text_names_the_path(tmp_path):
    missing = tmp_path / "nowhere.txt"
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        w2v.main(["--text", str(missing)])


@pytest.mark.slow
@pytest.mark.skipif(not SHAKESPEARE.exists(), reason=f"{SHAKESPEARE} not found")
def test_benchmark_quick_run_writes_json(tmp_path):
    out = tmp_path / "word2vec.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_word2vec.py"), "--quick",
         "--batches", "1,4", "--examples", "64", "--repeat", "1", "--words", "3000",
         "--dim", "8", "--window", str(WINDOW), "--negatives", str(NEGATIVES),
         "--dtype", "float64", "--output", str(out)],
        env=dict(os.environ), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["benchmark"] == "word2vec" and data["quick"] is True
    assert data["thread_env"]["OPENBLAS_NUM_THREADS"] == "1"
    rows = data["rows"]
    assert {(r["model"], r["batch"], r["contender"]) for r in rows} == {
        (m, b, c) for m in w2v.MODELS for b in (1, 4) for c in
        ("symgrad", "symgrad step(dict)", "numpy")
    }  # fmt: skip
    for r in rows:
        assert r["examples_per_s"] > 0 and r["words_per_s"] > 0
        assert r["max_abs_diff_vs_numpy"] <= 1e-10 * max(1.0, r["max_abs_update"])
        assert r["max_abs_update"] > 0
