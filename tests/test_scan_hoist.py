"""Scan speed structure: hoisted input projections, saved residuals, one forward loop, no
allocation inside loops, and gradients that still match finite differences.

The structural tests read the generated source (``f.source``), which exists before Numba
compiles anything, so they cost no compile time.
"""

import re

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.codegen.blas import matmul_call
from symgrad.testing import check_grad

T, n = sp.symbols("T n")
D, H = 3, 4
X = sg.Sequence("X", T, n, D)
M = sg.Sequence("M", T, n, 1)
Y = sg.Sequence("Y", T, n, H)
x = sp.MatrixSymbol("x_t", n, D)
m = sp.MatrixSymbol("m_t", n, 1)
y = sp.MatrixSymbol("y_t", n, H)
h = sp.MatrixSymbol("h", n, H)
h0 = sp.MatrixSymbol("h0", n, H)
W = sp.MatrixSymbol("W", D, H)
U = sp.MatrixSymbol("U", H, H)
b = sp.MatrixSymbol("b", 1, H)
u = sp.Dummy("u")
SIGMOID = sp.Lambda(u, 1 / (1 + sp.exp(-u)))

#: How generated code spells a 2-D matrix product (np.dot or the MKL gemm).
MATMUL = matmul_call() + "("


def masked_elman():
    """A sigmoid Elman net whose state is frozen where the mask is 0 (rows of unequal length)."""
    cand = (x * W + h * U + sp.OneMatrix(n, 1) * b).applyfunc(SIGMOID)
    keep = m * sp.OneMatrix(1, H)  # (n, H): the mask row repeated
    h_new = sp.HadamardProduct(keep, cand) + sp.HadamardProduct(sp.OneMatrix(n, H) - keep, h)
    err = h_new - y
    rnn = sg.scan([(x, X), (m, M), (y, Y)], [(h, h_new, h0)], [sp.Trace(err.T * err) / 2])
    return [rnn.total(), rnn.final()], [W, U, b, h0, X]


@pytest.fixture(scope="module")
def elman():
    exprs, wrt = masked_elman()
    return sg.compile(exprs, wrt=wrt)


def function_source(f, name: str) -> list[str]:
    """The lines of generated function ``name``."""
    lines = f.source.splitlines()
    start = next(k for k, ln in enumerate(lines) if ln.startswith(f"def {name}("))
    end = next((k for k in range(start + 1, len(lines)) if lines[k].startswith("def ")),
               len(lines))  # fmt: skip
    return lines[start:end]


def loops(lines: list[str]) -> list[tuple[str, list[str]]]:
    """``(header, body lines)`` of every scan loop (``for step<k> in ...``)."""
    out = []
    for k, ln in enumerate(lines):
        if re.match(r"\s*for step\d+ in ", ln):
            depth = len(ln) - len(ln.lstrip())
            body = []
            for nxt in lines[k + 1 :]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= depth:
                    break
                body.append(nxt)
            out.append((ln.strip(), body))
    return out


def at_function_level(line: str) -> bool:
    """Whether ``line`` is a statement of the function body itself, outside every loop."""
    return line.startswith("    ") and not line[4].isspace()


def arg(f, name: str) -> str:
    return f"arg{[str(s) for s in f.inputs].index(name)}"


def test_input_projection_is_one_matmul_before_the_loop(elman):
    lines = function_source(elman, "value")
    w = arg(elman, "W")
    uses = [ln for ln in lines[1:] if re.search(rf"\b{w}\b", ln)]
    assert len(uses) == 1, uses
    assert MATMUL in uses[0] and at_function_level(uses[0]), uses
    ((_, body),) = loops(lines)
    assert not any(re.search(rf"\b{w}\b", ln) for ln in body)


def test_backward_runs_one_forward_loop_and_reads_saved_values(elman):
    lines = function_source(elman, "value_and_grad")
    found = loops(lines)
    forward = [body for head, body in found if ", -1, -1)" not in head]
    reverse = [body for head, body in found if ", -1, -1)" in head]
    assert len(forward) == 1 and len(reverse) == 1
    text = "\n".join(reverse[0])
    # The sigmoid and the input projection are read from buffers, not recomputed.
    assert not re.search(r"exp|sigmoid|tanh", text), text
    # No forward product is redone: the weights appear only as Uᵀ, transposed before the loop.
    for name in ("W", "U"):
        assert not re.search(rf"\b{arg(elman, name)}\b", text), name
    # The shared-weight gradients are single products after the loop.
    w_grad = [ln for ln in lines if MATMUL in ln and at_function_level(ln)]
    assert len(w_grad) >= 3  # X·W before, then Σ x_tᵀ δ_t, Σ h_{t-1}ᵀ δ_t and δ·Wᵀ after


@pytest.mark.parametrize("kind", ["value", "value_and_grad", "forward", "backward"])
def test_no_allocation_inside_scan_loops(elman, kind):
    for head, body in loops(function_source(elman, kind)):
        text = "\n".join(body)
        for pattern in (r"np\.(empty|zeros|full|ones)\(", r"= np\.dot\(", r"\.copy\(\)",
                        r"ascontiguousarray"):  # fmt: skip
            assert not re.search(pattern, text), (kind, head, pattern)


def reference(v):
    """NumPy forward pass of :func:`masked_elman`."""
    hs, loss = v["h0"], 0.0
    for t in range(v["X"].shape[0]):
        cand = 1 / (1 + np.exp(-(v["X"][t] @ v["W"] + hs @ v["U"] + v["b"])))
        hs = v["M"][t] * cand + (1 - v["M"][t]) * hs
        loss += 0.5 * np.sum((hs - v["Y"][t]) ** 2)
    return loss, hs


def values(rng, steps, batch=3):
    lengths = rng.integers(1, steps + 1, size=batch)
    lengths[0] = steps
    mask = (np.arange(steps)[:, None] < lengths[None, :]).astype(float)[..., None]
    return {
        "X": rng.normal(size=(steps, batch, D)),
        "M": mask,
        "Y": rng.uniform(size=(steps, batch, H)),
        "W": rng.normal(size=(D, H)),
        "U": rng.normal(size=(H, H)) * 0.5,
        "b": rng.normal(size=(1, H)),
        "h0": rng.uniform(-1, 1, size=(batch, H)),
    }


@pytest.mark.parametrize("steps", [1, 2, 7])
def test_masked_gradients_match_finite_differences(elman, steps):
    rng = np.random.default_rng(100 + steps)
    v = values(rng, steps)
    (loss, final), grads = elman.value_and_grad(v)
    ref_loss, ref_final = reference(v)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(final, ref_final, rtol=1e-12)
    for name, g in zip(["W", "U", "b", "h0", "X"], grads):
        assert g.shape == v[name].shape
    check_grad(elman, v, mode="reverse", seed=steps)


def test_masked_rows_get_no_input_gradient_after_their_end(elman):
    rng = np.random.default_rng(7)
    v = values(rng, 5)
    v["M"][3:, 1] = 0.0
    (_, _), grads = elman.value_and_grad(v)
    d_x = grads[-1]
    np.testing.assert_array_equal(d_x[3:, 1], 0.0)
    assert np.all(np.abs(d_x[:3, 1]) > 0)


def test_forward_and_backward_split_agree_with_value_and_grad(elman):
    """The tape carries the stacked residuals from the forward function to the backward one."""
    rng = np.random.default_rng(8)
    v = values(rng, 4)
    (loss, _), grads = elman.value_and_grad(v)
    args = [np.asarray(v[str(k)], dtype=float) for k in elman.inputs]
    out, tape = elman.forward(*args)
    back = elman.backward(*args, *tape, 1.0)
    assert out[0] == pytest.approx(loss, rel=1e-12)
    for a, r in zip(back, grads):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-14)


def test_lstm_hoists_every_input_projection_and_recomputes_nothing():
    from test_scan_cells import X as X_cells
    from test_scan_cells import lstm

    loss, wrt = lstm()
    f = sg.compile(loss, wrt=wrt + [X_cells])  # source only: Numba compiles on first call
    lines = function_source(f, "value_and_grad")
    input_weights = [arg(f, f"l{k}") for k in (0, 2, 4, 6)]  # U_f, U_i, U_o, U_c: (D, H)
    outside = [ln for ln in lines if at_function_level(ln) and MATMUL in ln]
    for w in input_weights:
        assert sum(bool(re.search(rf"\b{w}\b", ln)) for ln in outside) == 1, w
    found = loops(lines)
    reverse = [body for head, body in found if ", -1, -1)" in head]
    # One forward loop per reverse loop: each forward scan ran merged with its extension.
    # (this loss lowers to two scans: its sum and its final state are two SymPy spellings.)
    assert len(found) == 2 * len(reverse)
    for _, body in found:
        text = "\n".join(body)
        assert not any(re.search(rf"\b{w}\b", text) for w in input_weights)
    for body in reverse:
        assert not re.search(r"exp|sigmoid|tanh", "\n".join(body))


def test_lstm_body_writes_its_states_and_saved_values_in_place():
    # Values the body computes are written straight into their stack slice or their carry's
    # spare buffer; only values passed through unchanged (h_{t-1} saved for backward) are copied.
    from test_scan_cells import X as X_cells
    from test_scan_cells import lstm

    loss, wrt = lstm()
    f = sg.compile(loss, wrt=wrt + [X_cells])
    lines = function_source(f, "value_and_grad")
    for head, body in loops(lines):
        text = "\n".join(body)
        direct = re.findall(r"^\s*t\d+ = (stack\d+\[step\d+\]|spare\d+)$", text, re.M)
        copied = re.findall(r"^\s*(stack\d+)\[step\d+, [^\]]*\] = (\w+)\[", text, re.M)
        spares = re.findall(r"^\s*(spare\d+)\[[^\]]*\] = (\w+)\[", text, re.M)
        if ", -1, -1)" not in head:  # forward: gates and both new states go straight out
            assert len(direct) >= 4, (head, direct)
        assert all(src.startswith(("carry", "seq")) for _, src in copied), copied
        assert not spares, spares


def test_loops_multiply_by_plain_copies_of_transposed_weights():
    # OpenBLAS is much slower on the step's small products with a transposed operand, so the
    # reverse loop's δ·Uᵀ reads a C-ordered copy of Uᵀ made once before the loop.
    from test_scan_cells import X as X_cells
    from test_scan_cells import lstm

    loss, wrt = lstm()
    f = sg.compile(loss, wrt=wrt + [X_cells])
    lines = function_source(f, "value_and_grad")
    # Transposes made at function level, outside every loop.
    views = {m.group(1) for ln in lines if (m := re.match(r"    (t\d+) = \w+\.T$", ln))}
    reverse = [body for head, body in loops(lines) if ", -1, -1)" in head]
    products = [ln for body in reverse for ln in body if MATMUL in ln]
    assert len(products) >= 4, products
    for ln in products:
        operands = re.findall(r"\w+", ln.split(MATMUL, 1)[1])
        assert not views & set(operands), ln
    assert sum("np.ascontiguousarray(t" in ln for ln in lines) >= 4
