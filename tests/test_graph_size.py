"""Gradient cost stays linear: deep chains and long products do not swell the backward graph."""

import math

import pytest
import sympy as sp

import symgrad as sg
from symgrad.compiler.program import build_programs
from symgrad.ir.node import toposort
from symgrad.ir.program import flatten

x, y = sp.symbols("x y")
DEPTH = 200


def _count(result, params) -> int:
    return len(toposort(flatten(result), stop=params))


def _sizes(expr, wrt):
    ps = build_programs([expr], wrt)
    programs = {p.name: p for p in ps.programs}
    forward = _count(programs["value"].result, programs["value"].params)
    both = _count(programs["value_and_grad"].result, programs["value_and_grad"].params)
    return forward, both


def nested_sin(depth: int):
    e = x
    for _ in range(depth):
        e = sp.sin(e)
    return e


def test_nested_chain_backward_is_linear():
    forward, both = _sizes(nested_sin(DEPTH), [x])
    assert forward >= DEPTH
    assert both <= 4 * forward


def test_long_product_backward_is_linear():
    symbols = sp.symbols(f"p0:{DEPTH}")
    forward, both = _sizes(sp.Mul(*symbols), list(symbols))
    assert forward >= DEPTH
    assert both <= 4 * forward


@pytest.mark.slow
def test_nested_chain_compiles_and_is_correct():
    f = sg.compile(nested_sin(DEPTH), wrt=[x])
    value, (g,) = f.value_and_grad(x=0.7)
    v, d = 0.7, 1.0
    for _ in range(DEPTH):
        d *= math.cos(v)
        v = math.sin(v)
    assert value == pytest.approx(v, rel=1e-12)
    assert g == pytest.approx(d, rel=1e-9)


@pytest.mark.slow
def test_long_product_compiles_and_is_correct():
    symbols = sp.symbols(f"p0:{DEPTH}")
    f = sg.compile(sp.Mul(*symbols), wrt=list(symbols))
    values = {s.name: 1.0 + 0.001 * k for k, s in enumerate(symbols)}
    total = math.prod(values.values())
    value, grads = f.value_and_grad(**values)
    assert value == pytest.approx(total)
    for s, g in zip(symbols, grads):
        assert g == pytest.approx(total / values[s.name])
