"""GRU and LSTM steps written by hand in SymPy: several states, gradients by BPTT."""

import numpy as np
import pytest
import sympy as sp

import symgrad as sg

T, n = sp.symbols("T n")
D, H = 2, 3
X = sg.Sequence("X", T, n, D)
x = sp.MatrixSymbol("x_t", n, D)
h = sp.MatrixSymbol("h", n, H)
c = sp.MatrixSymbol("c", n, H)
h0 = sp.MatrixSymbol("h0", n, H)
c0 = sp.MatrixSymbol("c0", n, H)
u = sp.Dummy("u")
SIGMOID = sp.Lambda(u, 1 / (1 + sp.exp(-u)))
ONES = sp.OneMatrix(n, 1)


def mats(prefix, shapes):
    return [sp.MatrixSymbol(f"{prefix}{k}", *s) for k, s in enumerate(shapes)]


def gru():
    Wz, Uz, Wr, Ur, Wh, Uh = mats("g", [(D, H), (H, H)] * 3)
    z = (x * Wz + h * Uz).applyfunc(SIGMOID)
    r = (x * Wr + h * Ur).applyfunc(SIGMOID)
    cand = (x * Wh + sp.HadamardProduct(r, h * Uh)).applyfunc(sp.tanh)
    h_new = sp.HadamardProduct(z, h) + sp.HadamardProduct(sp.OneMatrix(n, H) - z, cand)
    rnn = sg.scan([(x, X)], [(h, h_new, h0)], [sp.Trace(h_new.T * h_new)])
    return rnn.total(), [Wz, Uz, Wr, Ur, Wh, Uh, h0]


def lstm():
    U_f, W_f, U_i, W_i, U_o, W_o, U_c, W_c = mats("l", [(D, H), (H, H)] * 4)
    b_f, b_i, b_o, b_c = mats("b", [(1, H)] * 4)

    def gate(Ux, Wh, b, f):
        return (x * Ux + h * Wh + ONES * b).applyfunc(f)

    f = gate(U_f, W_f, b_f, SIGMOID)
    i = gate(U_i, W_i, b_i, SIGMOID)
    o = gate(U_o, W_o, b_o, SIGMOID)
    cand = gate(U_c, W_c, b_c, sp.tanh)
    c_new = sp.HadamardProduct(f, c) + sp.HadamardProduct(i, cand)
    h_new = sp.HadamardProduct(o, c_new.applyfunc(sp.tanh))
    rnn = sg.scan([(x, X)], [(h, h_new, h0), (c, c_new, c0)], [sp.Trace(h_new.T * h_new)])
    loss = rnn.total() + sp.Trace(rnn.final(1).T * rnn.final(1))
    return loss, [U_f, W_f, U_i, W_i, U_o, W_o, U_c, W_c, b_f, b_i, b_o, b_c, h0, c0]


@pytest.mark.parametrize("cell", [gru, lstm])
def test_cell_gradients_match_finite_differences(cell):
    loss, wrt = cell()
    f = sg.compile(loss, wrt=wrt + [X])
    rng = np.random.default_rng(7)
    for steps in (1, 3):
        values = {s.name: rng.normal(size=tuple(int(d) if d.is_Integer else 2 for d in s.shape))
                  for s in wrt}  # fmt: skip
        values["X"] = rng.normal(size=(steps, 2, D))
        _, grads = f.value_and_grad(values)
        eps = 1e-6
        for s, g in zip(wrt + [X], grads):
            arr = values[s.name].reshape(-1)
            for k in rng.choice(arr.size, size=min(3, arr.size), replace=False):
                old = arr[k]
                arr[k] = old + eps
                up = f(values)
                arr[k] = old - eps
                down = f(values)
                arr[k] = old
                numeric = (up - down) / (2 * eps)
                assert g.reshape(-1)[k] == pytest.approx(numeric, rel=1e-6, abs=1e-8), (s, k)
