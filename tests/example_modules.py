"""Import the scripts of ``examples/`` (not a package) as modules, for the tests that run them."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> ModuleType:
    """``examples/<name>.py`` as the module ``name`` (imported once, then reused).

    The examples folder is on ``sys.path`` while it loads, so an example can import its sibling
    modules (``word2vec`` imports ``word2vec_numpy``).
    """
    sys.path.insert(0, str(EXAMPLES))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLES))
