"""Test configuration: a per-session cache folder unless the caller chose one, seeded hypothesis."""

import os
import tempfile

from hypothesis import settings

if "SYMGRAD_CACHE_DIR" not in os.environ:
    os.environ["SYMGRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="symgrad-test-cache-")

# deadline=None: the first Numba compile of a graph takes seconds.
settings.register_profile("symgrad", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("symgrad")
