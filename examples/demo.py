"""symgrad demo: compile the worked examples and a small matrix model, print values, gradients,
timings and a piece of the generated source."""

from __future__ import annotations

import time

import numpy as np
import sympy as sp

import symgrad as sg


def timed(label: str, fn, repeat: int = 20000) -> None:
    fn()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        times.append((time.perf_counter() - t0) / repeat)
    print(f"  {label}: {np.median(times) * 1e6:.2f} µs per call (median of 5 x {repeat})")


def main() -> None:
    x, y, z = sp.symbols("x y z")
    print("1. f = (x + y) * z at x=-2, y=5, z=-4")
    t0 = time.perf_counter()
    f = sg.compile((x + y) * z, wrt=[x, y, z])
    print(f"  compiled in {time.perf_counter() - t0:.2f} s")
    print("  f.value_and_grad ->", f.value_and_grad(x=-2.0, y=5.0, z=-4.0))
    timed("value_and_grad", lambda: f.value_and_grad(x=-2.0, y=5.0, z=-4.0))

    w0, x0, w1, x1, w2 = sp.symbols("w0 x0 w1 x1 w2")
    print("\n2. sigmoid neuron 1/(1+exp(-(w0*x0 + w1*x1 + w2)))")
    neuron = sg.compile(1 / (1 + sp.exp(-(w0 * x0 + w1 * x1 + w2))), wrt=[w0, x0, w1, x1, w2])
    value, grads = neuron.value_and_grad(w0=2.0, x0=-1.0, w1=-3.0, x1=-2.0, w2=-3.0)
    print(f"  value {value:.4f}")
    for sym, g in zip(neuron.wrt, grads):
        print(f"  d/d{sym} = {g:+.3f}")
    timed(
        "value_and_grad", lambda: neuron.value_and_grad(w0=2.0, x0=-1.0, w1=-3.0, x1=-2.0, w2=-3.0)
    )

    print("\n   over 1,000,000 points (scalar symbols given arrays):")
    rng = np.random.default_rng(0)
    pts = {s.name: rng.normal(size=1_000_000) for s in neuron.wrt}
    neuron.value_and_grad(**pts)
    t0 = time.perf_counter()
    neuron.value_and_grad(**pts)
    print(f"  value and 5 gradients in {(time.perf_counter() - t0) * 1e3:.1f} ms")

    print("\n3. a one-hidden-layer tanh network, loss = trace(H^T H) / n, H = tanh(X W + 1 b)")
    n = sp.Symbol("n")
    X = sp.MatrixSymbol("X", n, 3)
    W = sp.MatrixSymbol("W", 3, 4)
    b = sp.MatrixSymbol("b", 1, 4)
    H = (X * W + sp.OneMatrix(n, 1) * b).applyfunc(sp.tanh)
    loss = sp.Trace(H.T * H) / n
    g = sg.compile(loss, wrt=[W, b])
    Xv, Wv, bv = rng.normal(size=(8, 3)), rng.normal(size=(3, 4)), rng.normal(size=(1, 4))
    value, (gW, gb) = g.value_and_grad(X=Xv, W=Wv, b=bv)
    print(f"  loss {value:.6f}")
    print("  dL/db =", np.array2string(gb, precision=4))
    print("\n  a piece of the generated source (value_and_grad):")
    src = g.source
    start = src.index("def value_and_grad(")
    print("\n".join("    " + line for line in src[start:].splitlines()[:24]))


if __name__ == "__main__":
    main()
