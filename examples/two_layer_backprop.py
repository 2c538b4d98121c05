"""The classic two-layer network: symgrad's gradients beside the hand-derived δ-rule.

Examples are the columns of X (the textbook convention). With the sigmoid f,

    a(1) = X,   z(l+1) = W(l) a(l) + b(l) 1ᵀ,   a(l+1) = f(z(l+1))        (l = 1, 2)
    E    = ½ Σ ‖a(3) − T‖² + ½ λ (‖W(1)‖² + ‖W(2)‖²)

and backpropagation gives, with f′(z) = f(z) (1 − f(z)),

    δ(3) = (a(3) − T) ∘ f′(z(3))
    δ(l) = (W(l)ᵀ δ(l+1)) ∘ f′(z(l))
    ∂E/∂W(l) = δ(l+1) a(l)ᵀ + λ W(l),    ∂E/∂b(l) = δ(l+1) 1.

symgrad is given only E, written in SymPy; it derives the gradients itself. This script prints
both sets of numbers and how far apart they are.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

import symgrad as sg

N_IN, N_HIDDEN, N_OUT = 3, 4, 2


def build_loss():
    """E as a SymPy expression of matrix symbols, with a symbolic number of examples n."""
    n = sp.Symbol("n")
    X = sp.MatrixSymbol("X", N_IN, n)
    T = sp.MatrixSymbol("T", N_OUT, n)
    W1, b1 = sp.MatrixSymbol("W1", N_HIDDEN, N_IN), sp.MatrixSymbol("b1", N_HIDDEN, 1)
    W2, b2 = sp.MatrixSymbol("W2", N_OUT, N_HIDDEN), sp.MatrixSymbol("b2", N_OUT, 1)
    lam = sp.Symbol("lambda")
    z = sp.Symbol("z")
    f = sp.Lambda(z, 1 / (1 + sp.exp(-z)))
    ones = sp.OneMatrix(1, n)
    a2 = (W1 * X + b1 * ones).applyfunc(f)
    a3 = (W2 * a2 + b2 * ones).applyfunc(f)
    R = a3 - T
    E = sp.Trace(R.T * R) / 2 + lam / 2 * (sp.Trace(W1.T * W1) + sp.Trace(W2.T * W2))
    return E, [W1, b1, W2, b2]


def delta_rule(X, T, W1, b1, W2, b2, lam):
    """The hand-derived gradients, in NumPy."""

    def f(z):
        return 1 / (1 + np.exp(-z))

    a1 = X
    a2 = f(W1 @ a1 + b1)
    a3 = f(W2 @ a2 + b2)
    d3 = (a3 - T) * a3 * (1 - a3)
    d2 = (W2.T @ d3) * a2 * (1 - a2)
    return {
        "W1": d2 @ a1.T + lam * W1,
        "b1": d2.sum(axis=1, keepdims=True),
        "W2": d3 @ a2.T + lam * W2,
        "b2": d3.sum(axis=1, keepdims=True),
    }


def side_by_side(name: str, ours: np.ndarray, theirs: np.ndarray) -> str:
    left = np.array2string(ours, precision=6, suppress_small=True, floatmode="fixed").splitlines()
    right = np.array2string(
        theirs, precision=6, suppress_small=True, floatmode="fixed"
    ).splitlines()
    width = max(len(s) for s in left)
    head = f"∂E/∂{name}: symgrad".ljust(width) + "   δ-rule"
    rows = [f"{a.ljust(width)}   {b}" for a, b in zip(left, right)]
    return "\n".join([head, *rows])


def print_backward_equations(f: sg.Compiled) -> None:
    """The forward and backward pass symgrad derived and compiles, raised back to equations."""
    print("\nwhat symgrad compiled, as equations (sg.explain):")
    print(sg.explain(f))


def main() -> dict:
    E, params = build_loss()
    f = sg.compile(E, wrt=params)

    rng = np.random.default_rng(0)
    n = 5
    values = {
        "X": rng.normal(size=(N_IN, n)),
        "T": rng.uniform(size=(N_OUT, n)),
        "W1": rng.normal(scale=0.5, size=(N_HIDDEN, N_IN)),
        "b1": rng.normal(scale=0.1, size=(N_HIDDEN, 1)),
        "W2": rng.normal(scale=0.5, size=(N_OUT, N_HIDDEN)),
        "b2": rng.normal(scale=0.1, size=(N_OUT, 1)),
        "lambda": 0.01,
    }
    loss, grads = f.value_and_grad(values)
    hand = delta_rule(**{k if k != "lambda" else "lam": v for k, v in values.items()})

    print(__doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0])
    print(f"\nn = {n} examples, λ = {values['lambda']}, E = {loss:.10f}\n")
    worst = {}
    for p, g in zip(params, grads):
        name = str(p)
        print(side_by_side(name, g, hand[name]), "\n")
        worst[name] = float(np.max(np.abs(g - hand[name])))
    print("largest |symgrad − δ-rule| per parameter:")
    for name, err in worst.items():
        print(f"  {name}: {err:.2e}")
    agree = all(np.allclose(g, hand[str(p)], rtol=1e-12, atol=1e-14) for p, g in zip(params, grads))
    print("they agree to rounding error" if agree else "THEY DISAGREE")

    # --- The derived backward pass as equations (the equations view goes here) ---------------
    print_backward_equations(f)
    return {"loss": float(loss), "max_abs_diff": worst, "agree": agree}


if __name__ == "__main__":
    main()
