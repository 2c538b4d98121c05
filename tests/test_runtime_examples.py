"""The examples reach their targets: XOR learnt by two layers (not by one), ≥ 97 % on digits,
symgrad's gradients equal to the hand-derived δ-rule."""

from pathlib import Path

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
    result = _example("mlp_digits").main(["--no-progress", "--no-sklearn", "--plot", str(plot)])
    assert result["symgrad"]["accuracy"] >= 0.97
    assert plot.read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "test accuracy" in out and str(plot) in out


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
