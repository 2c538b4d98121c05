"""The examples reach their targets: XOR learnt by two layers (not by one), ≥ 97 % on digits
(and a mean ± std summary over seeds), symgrad's gradients equal to the hand-derived δ-rule."""

from pathlib import Path

import numpy as np
import pytest
from example_modules import load_example

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _example(name: str):
    return load_example(name)


@pytest.mark.slow
def test_xor_needs_two_layers(capsys):
    result = _example("xor").main(["--no-progress"])
    assert result["single_accuracy"] <= 0.75
    assert result["single_loss"] == pytest.approx(0.693147, abs=1e-4)  # ln 2: chance
    assert result["two_layer_accuracy"] == 1.0 and result["two_layer_loss"] < 0.01
    assert "two layers" in capsys.readouterr().out


@pytest.mark.slow
def test_digits_reaches_97_percent(tmp_path, capsys):
    plot = tmp_path / "digits.png"
    argv = ["--no-progress", "--no-sklearn", "--seeds", "1", "--plot", str(plot)]
    result = _example("mlp_digits").main(argv)
    assert result["symgrad"]["accuracy"] >= 0.97
    assert result["seeds"] == [0] and "summary" not in result
    assert plot.read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "test accuracy" in out and str(plot) in out
    assert "±" not in out  # a single run: no summary


@pytest.mark.slow
def test_digits_over_seeds_reports_mean_std_and_median_wall(tmp_path, capsys):
    """--seeds N trains both N times (each seed its own split, init and batch order) and
    summarises; two epochs keep it quick."""
    plot = tmp_path / "digits.png"
    argv = ["--no-progress", "--epochs", "2", "--seed", "3", "--seeds", "3", "--plot", str(plot)]
    result = _example("mlp_digits").main(argv)
    assert result["seeds"] == [3, 4, 5]
    runs, summary = result["runs"], result["summary"]
    assert [len(runs["symgrad"]), len(runs["sklearn"])] == [3, 3]
    assert runs["symgrad"][0] is result["symgrad"] and runs["sklearn"][0] is result["sklearn"]
    for name in ("symgrad", "sklearn"):
        accuracies = [r["accuracy"] for r in runs[name]]
        assert summary[name]["n"] == 3
        assert summary[name]["mean"] == pytest.approx(sum(accuracies) / 3)
        assert summary[name]["std"] == pytest.approx(float(np.std(accuracies, ddof=1)))
        assert summary[name]["median_wall"] == sorted(r["wall"] for r in runs[name])[1]
        assert 0.5 < summary[name]["mean"] <= 1.0  # two epochs already learn something
    difference = np.subtract(*[[r["accuracy"] for r in runs[k]] for k in ("symgrad", "sklearn")])
    assert summary["difference"]["mean"] == pytest.approx(difference.mean())
    assert len(result["symgrad"]["history"]["val_accuracy"]) == 2  # the plotted first seed
    out = capsys.readouterr().out
    assert "over 3 seeds (3–5" in out and "mean ± std" in out and "median wall" in out
    assert out.count("seed 4") == 1 and out.count("seed 5") == 1
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_digits_seeds_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        _example("mlp_digits").parse_args(["--seeds", "0"])
    assert "--seeds must be at least 1" in capsys.readouterr().err


@pytest.mark.slow
def test_two_layer_backprop_agrees_with_the_delta_rule(capsys):
    result = _example("two_layer_backprop").main()
    assert result["agree"]
    assert max(result["max_abs_diff"].values()) < 1e-12
    assert "δ-rule" in capsys.readouterr().out


@pytest.mark.slow
def test_runtime_docstring_examples_run():
    import doctest
    import importlib

    for name in ("", ".batching", ".checkpoint", ".models", ".optimizers", ".params", ".plot",
                 ".schedules", ".scipy_opt", ".trainer"):  # fmt: skip
        module = importlib.import_module(f"symgrad.runtime{name}")
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
