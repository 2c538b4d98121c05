"""codegen/generated_module.py: twins run from the source; the module is imported on demand."""

from __future__ import annotations

import inspect
import textwrap

import pytest

from symgrad.codegen.generated_module import GeneratedModule, _python_twins

SOURCE = textwrap.dedent(
    """
    import math
    from numba import njit

    _F = 1.0
    _K0 = 2.5


    def value(arg0):
        return arg0


    def py_value(arg0):
        t1 = math.exp(arg0)
        return (t1 * _K0)
    """
)


def test_twins_run_without_importing_the_module(tmp_path):
    path = tmp_path / "generated.py"
    path.write_text(SOURCE)
    imports = []

    def importer():
        imports.append(1)
        return type("M", (), {"value": staticmethod(lambda a: a)})

    module = GeneratedModule(path, SOURCE, importer)
    assert not module.imported
    assert module.twin("py_value")(0.0) == 2.5
    assert "math.exp(arg0)" in inspect.getsource(module.twin("py_value"))
    assert not imports
    assert module.value(3.0) == 3.0  # a Numba function: imported now, once
    assert module.imported and imports == [1]
    assert module.twin("py_missing") is None


def test_a_twin_reading_an_unknown_global_keeps_the_module_eager(tmp_path):
    source = SOURCE.replace("t1 = math.exp(arg0)", "t1 = digamma(arg0)")
    assert _python_twins(source, tmp_path / "g.py") == {}
    module = GeneratedModule(tmp_path / "g.py", source, lambda: "the module")
    assert module.imported


def test_modules_without_twins_are_imported_at_once(tmp_path):
    module = GeneratedModule(tmp_path / "g.py", "def value(a):\n    return a\n", lambda: 42)
    assert module.imported and module.module == 42
    with pytest.raises(AttributeError):
        getattr(module, "__wrapped__")  # noqa: B009 - dunder lookups never import


def test_a_constant_the_twin_namespace_cannot_build_keeps_the_module_eager(tmp_path):
    source = SOURCE.replace("_K0 = 2.5", "_K0 = special_constant()")
    assert _python_twins(source, tmp_path / "g.py") == {}
