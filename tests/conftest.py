"""Test configuration: a per-session cache folder unless the caller chose one, seeded hypothesis."""

import os
import tempfile

import sympy.core.random
from hypothesis import settings

if "SYMGRAD_CACHE_DIR" not in os.environ:
    os.environ["SYMGRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="symgrad-test-cache-")

# deadline=None: the first Numba compile of a graph takes seconds.
settings.register_profile("symgrad", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("symgrad")

# Same examples whatever else runs. Hypothesis (6.131 and later) now and then draws a literal
# constant harvested from every local module imported so far, so with derandomize=True a test
# still drew different examples in the full suite than in its file alone, and new ones whenever
# any module of the project changed. Without that pool a test's examples depend only on the test.
try:
    from hypothesis.internal.conjecture import providers as _providers

    _NO_LOCAL_CONSTANTS = _providers.Constants()
    _providers._get_local_constants = lambda: _NO_LOCAL_CONSTANTS
    _providers.CONSTANTS_CACHE.cache.clear()
except (ImportError, AttributeError):  # an older or a reorganised Hypothesis
    pass

# SymPy tries related assumption facts in a shuffled order; seed that shuffle.
sympy.core.random.seed(0)
