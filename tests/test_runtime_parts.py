"""Runtime pieces that need no compilation: initialisers, parameter store, schedules, batches,
checkpoints (atomic writes, no pickle), plots, MLP construction and data checks."""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.runtime import (
    MLP,
    Adam,
    Batches,
    CheckpointError,
    Cyclic,
    DataError,
    ExponentialDecay,
    ParamStore,
    StepDecay,
    load_checkpoint,
    plot_history,
    save_checkpoint,
)
from symgrad.runtime import checkpoint as ckmod
from symgrad.runtime.params import he_normal, xavier_normal, xavier_uniform

# -- initialisers and the store ---------------------------------------------------------------


def test_initialisers_have_the_textbook_scales():
    rng = np.random.default_rng(0)
    fan_in, fan_out = 400, 600
    a = math.sqrt(6 / (fan_in + fan_out))
    w = xavier_uniform((fan_in, fan_out), rng)
    assert w.min() >= -a and w.max() <= a
    assert w.std() == pytest.approx(a / math.sqrt(3), rel=0.02)
    assert xavier_normal((fan_in, fan_out), rng).std() == pytest.approx(
        math.sqrt(2 / (fan_in + fan_out)), rel=0.02
    )
    assert he_normal((fan_in, fan_out), rng).std() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)


def test_store_is_seeded_typed_contiguous_and_keeps_array_identity():
    def build(seed):
        s = ParamStore("float32", seed=seed)
        s.add("W", (3, 4), "he_normal")
        s.add("b", (1, 4), "zeros")
        s.add("c", (2, 2), 0.5)
        return s

    s1, s2, s3 = build(1), build(1), build(2)
    assert np.array_equal(s1["W"], s2["W"]) and not np.array_equal(s1["W"], s3["W"])
    for a in s1.values():
        assert a.dtype == np.float32 and a.flags.c_contiguous
    assert s1["c"].tolist() == [[0.5, 0.5], [0.5, 0.5]]
    W = s1["W"]
    flat = s1.flat()
    assert flat.dtype == np.float64 and flat.shape == (s1.size,) == (3 * 4 + 4 + 4,)
    s1.assign_flat(np.arange(s1.size, dtype=float))
    assert s1["W"] is W and s1["W"][0, 1] == 1.0 and s1["b"][0, 0] == 12.0
    with pytest.raises(sg.ShapeError):
        s1.set("b", np.zeros((4, 1)))
    with pytest.raises(sg.InputError, match="unknown initialiser"):
        s1.add("d", (1, 1), "glorious")


# -- schedules and batches --------------------------------------------------------------------


def test_schedules():
    assert [StepDecay(1.0, every=3)(e, 0) for e in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    s = ExponentialDecay(0.2, k=0.1)
    assert s(5, 999) == pytest.approx(0.2 * math.exp(-0.5))
    assert ExponentialDecay(0.2, k=0.1, per="step")(0, 5) == pytest.approx(0.2 * math.exp(-0.5))
    c = Cyclic(0.1, 0.5, half_period=4)
    lrs = [c(0, t) for t in range(9)]
    assert lrs[0] == lrs[8] == pytest.approx(0.1) and lrs[4] == pytest.approx(0.5)
    assert lrs[2] == pytest.approx(0.3) and lrs[6] == pytest.approx(0.3)


def test_batches_cover_every_row_once_per_epoch_and_are_seeded():
    X = np.arange(23.0).reshape(23, 1)
    y = np.arange(23)
    b1, b2 = Batches([X, y], 5, seed=3), Batches([X, y], 5, seed=3)
    epoch1 = list(b1.epoch())
    assert [len(xb) for xb, _ in epoch1] == [5, 5, 5, 5, 3] and len(b1) == 5
    assert all(xb.flags.c_contiguous for xb, _ in epoch1)
    assert all(np.array_equal(xb[:, 0], yb) for xb, yb in epoch1)  # rows stay aligned
    seen = np.concatenate([yb for _, yb in epoch1])
    assert sorted(seen.tolist()) == list(range(23))
    assert np.array_equal(seen, np.concatenate([yb for _, yb in b2.epoch()]))
    epoch2 = np.concatenate([yb for _, yb in b1.epoch()])
    assert not np.array_equal(seen, epoch2)
    # The generator state round-trips through JSON (it is saved in checkpoints).
    state = json.loads(json.dumps(b1.rng_state))
    nxt = np.concatenate([yb for _, yb in b1.epoch()])
    b1.rng_state = state
    assert np.array_equal(nxt, np.concatenate([yb for _, yb in b1.epoch()]))
    with pytest.raises(sg.ShapeError):
        Batches([X, y[:-1]], 5)


# -- checkpoints ------------------------------------------------------------------------------


def _groups():
    return {
        "params": {"W1": np.arange(6.0).reshape(2, 3), "odd/name:x": np.ones((1, 2))},
        "state": {"W1:m": np.full((2, 3), 0.25, dtype=np.float32)},
    }


def test_checkpoint_round_trip_is_exact(tmp_path):
    meta = {"epoch": 3, "rng": np.random.default_rng(0).bit_generator.state, "h": [0.1, 1 / 3]}
    path = save_checkpoint(tmp_path / "ck.npz", _groups(), meta)
    ck = load_checkpoint(path)
    assert ck.meta == meta
    for group, arrays in _groups().items():
        for name, a in arrays.items():
            got = ck.groups[group][name]
            assert got.dtype == a.dtype and np.array_equal(got, a)
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_a_crash_while_writing_leaves_the_old_checkpoint_and_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, _groups(), {"epoch": 1})
    before = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")  # some bytes reach the disk, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(ckmod.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, _groups(), {"epoch": 2})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ck.npz"]
    assert load_checkpoint(path).meta == {"epoch": 1}


def test_a_killed_process_never_leaves_a_partial_checkpoint(tmp_path):
    # A hard kill (no cleanup code runs) just before the rename: the target is untouched.
    path = tmp_path / "ck.npz"
    save_checkpoint(path, _groups(), {"epoch": 1})
    script = textwrap.dedent(f"""
        import os, numpy as np
        from symgrad.runtime import checkpoint as ck
        ck.os.replace = lambda *a: os._exit(9)
        ck.save_checkpoint({str(path)!r}, {{"params": {{"W": np.zeros(10**6)}}}}, {{"epoch": 2}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()
    assert load_checkpoint(path).meta == {"epoch": 1}


def test_loading_never_unpickles(tmp_path):
    bad = tmp_path / "evil.npz"
    np.savez(bad, meta_json=np.array([{"x": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="evil.npz"):
        load_checkpoint(bad)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "junk.npz")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.npz")


# -- plots ------------------------------------------------------------------------------------


def test_plot_writes_a_png(tmp_path):
    history = {
        "loss": [1.0, 0.5, 0.3],
        "val_loss": [1.1, 0.6, 0.5],
        "accuracy": [0.5, 0.8, 0.9],
        "val_accuracy": [0.4, 0.7, 0.85],
    }
    out = plot_history(history, tmp_path / "sub" / "curves.png", title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- models and data checks -------------------------------------------------------------------


def test_mlp_builds_the_expected_expression():
    net = MLP([3, 5, 4, 2], activation="relu", output="softmax", l2=0.01)
    assert [str(p) for p in net.params] == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert net.shapes == {
        "W1": (3, 5),
        "b1": (1, 5),
        "W2": (5, 4),
        "b2": (1, 4),
        "W3": (4, 2),
        "b3": (1, 2),
    }
    assert net.logits.shape == (net.n, 2)
    assert {s.name for s in net.loss.atoms(sp.MatrixSymbol)} == {"X", "Y", *net.shapes}
    store = net.init_params(seed=0)
    assert list(store) == list(net.shapes) and not store["b1"].any()
    assert store["W1"].std() > 0
    custom = MLP([2, 3, 1], activation=sp.atan, output="linear")
    assert "atan" in str(custom.logits)


def test_prepare_one_hot_encodes_and_checks_before_compiling():
    net = MLP([4, 3], output="softmax")
    X = np.ones((5, 4))
    (Xa, Y), labels = net.prepare(X, [0, 1, 2, 1, 0], "float32")
    assert Xa.dtype == Y.dtype == np.float32 and Y.tolist()[1] == [0, 1, 0]
    with pytest.raises(DataError, match=r"label 3 at y\[2\] is out of range.*\[0, 2\]"):
        net.prepare(X, [0, 1, 3, 1, 0])
    with pytest.raises(DataError, match="out of range"):
        net.prepare(X, [0, 1, -1, 1, 0])
    with pytest.raises(DataError, match="integers"):
        net.prepare(X, [0, 1, 1.5, 1, 0])
    with pytest.raises(sg.ShapeError, match="5 examples .* but y has 4 labels"):
        net.prepare(X, [0, 1, 2, 1])
    with pytest.raises(sg.ShapeError, match="3 features .* input layer takes 4"):
        net.prepare(np.ones((5, 3)), [0, 1, 2, 1, 0])
    with pytest.raises(DataError, match="non-finite"):
        net.prepare(np.full((5, 4), np.nan), [0, 1, 2, 1, 0])
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        MLP([4, 1], output="sigmoid").prepare(X, [0, 1, 2, 1, 0])


def test_optimizer_hyperparameters_and_state():
    opt = Adam(lr=0.5)
    assert opt.hyper_values(step=4) == {
        "opt:lr": 0.5,
        "opt:beta1": 0.9,
        "opt:beta2": 0.999,
        "opt:eps": 1e-8,
        "opt:t": 5.0,
    }
    state = opt.init_state({"W": np.ones((2, 3), dtype=np.float32)})
    assert sorted(state) == ["W:m", "W:v"] and state["W:m"].dtype == np.float32
    assert not state["W:v"].any()
    with pytest.raises(sg.InputError, match="no hyperparameter"):
        Adam(momentum=0.9)
