"""Helpers shared by the benchmark scripts: thread pinning, median timing, tables and JSON.

Only the standard library is imported at module level. :func:`pin_threads` must run before NumPy,
Numba, JAX or PyTorch are imported, because their thread pools read the environment once, at
import; the scripts therefore parse their command line, pin, and only then import the contenders.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

#: Where result files go by default (``*.json`` there is git-ignored).
RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Per-contender thread settings, read by the libraries at import time.
_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that cap every contender's thread pool at ``threads``."""
    env = {name: str(threads) for name in _THREAD_VARS}
    # XLA's CPU backend runs Eigen on its own pool; disabling the multi-threaded Eigen path and
    # capping intra-op parallelism is what keeps JAX on the same number of cores as the others.
    env["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}"
    return env


def pin_threads(threads: int) -> dict[str, str]:
    """Set :func:`thread_env` in ``os.environ``; call before importing any numeric library.

    Returns the variables set, for the results file. PyTorch ignores the environment for its
    inter-op pool, so :func:`pin_torch` must also be called after ``import torch``.
    """
    already = [m for m in ("numpy", "numba", "torch", "jax") if sys.modules.get(m) is not None]
    if already:
        # A library imported before pinning has sized its pool already: the numbers would lie.
        raise RuntimeError(f"pin_threads called after importing {', '.join(already)}")
    env = thread_env(threads)
    os.environ.update(env)
    return env


def pin_torch(torch, threads: int) -> None:
    """Apply the thread cap to an imported ``torch`` module (it ignores the environment)."""
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        # Only allowed before the first parallel op; a second call in one process is harmless.
        pass


def try_import(name: str):
    """Import a peer library, returning ``(module, None)`` or ``(None, reason)``.

    Peers are optional (the project's ``bench`` extra), so a missing one becomes a
    "not installed" row instead of a crash.
    """
    import importlib

    try:
        return importlib.import_module(name), None
    except ImportError as exc:
        return None, f"not installed ({exc.name or name})"
    except Exception as exc:  # a broken install must not take the other rows down
        return None, f"import failed: {type(exc).__name__}: {exc}"


def median_time(
    stmt: str | Callable[[], object],
    globals: dict | None = None,
    *,
    repeat: int = 7,
    min_time: float = 0.2,
    number: int | None = None,
) -> dict:
    """Median seconds per call of ``stmt`` over ``repeat`` timeit loops.

    Each loop runs ``number`` calls; when ``number`` is None it is chosen so one loop takes at
    least ``min_time`` seconds, which keeps timer resolution and loop overhead negligible for
    sub-microsecond calls. A string ``stmt`` is compiled by :mod:`timeit` with ``globals`` as its
    namespace, so no extra Python frame is added around the call being measured.

    Returns ``{"median": s, "min": s, "max": s, "number": n, "repeat": r}`` (seconds per call).
    """
    timer = timeit.Timer(stmt, globals=globals)
    if number is None:
        number = _loop_length(timer, min_time)
    per_call = [timer.timeit(number) / number for _ in range(repeat)]
    return {
        "median": statistics.median(per_call),
        "min": min(per_call),
        "max": max(per_call),
        "number": number,
        "repeat": repeat,
    }


def _loop_length(timer: timeit.Timer, min_time: float) -> int:
    """Calls per timed loop so that one loop lasts at least ``min_time`` seconds."""
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= min_time:
            return number
        # Grow geometrically toward the target instead of timeit's 1-2-5 steps, so slow
        # calls (milliseconds) do not spend most of the budget on calibration.
        number = max(number * 2, int(number * min_time / max(elapsed, 1e-9) * 1.1))


def interleaved_medians(
    runners: dict, *, repeat: int = 7, min_time: float = 0.2, globals_: dict | None = None
) -> dict:
    """:func:`median_time` for several contenders whose timed loops take turns.

    ``runners`` maps a name to a zero-argument callable or to ``(stmt, globals)`` as
    :func:`median_time` takes them. Each contender's loop length is calibrated alone, then the
    ``repeat`` loops of all contenders alternate, so load that drifts during a run (shared
    machines) hits every contender alike and their ratios stay comparable.

    Returns ``{name: {"median", "min", "max", "number", "repeat"}}`` in seconds per call.
    """
    timers = {}
    for name, runner in runners.items():
        stmt, env = runner if isinstance(runner, tuple) else (runner, globals_)
        timers[name] = timeit.Timer(stmt, globals=env)
    numbers = {name: _loop_length(timer, min_time) for name, timer in timers.items()}
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(repeat):
        for name, timer in timers.items():
            times[name].append(timer.timeit(numbers[name]) / numbers[name])
    return {
        name: {
            "median": statistics.median(t),
            "min": min(t),
            "max": max(t),
            "number": numbers[name],
            "repeat": repeat,
        }
        for name, t in times.items()
    }


def copy_bandwidth(nbytes: int = 256 * 2**20, *, repeat: int = 7) -> dict:
    """The machine's copy bandwidth in GB/s (bytes read + bytes written per second).

    ``copyto`` reuses a destination whose pages are already mapped: the best case, like STREAM's
    copy. ``copy`` allocates the destination each time, as any function returning a new array
    does, and so also pays for the page faults of fresh memory; memory-bound kernels that return
    new arrays should be judged against that one. 256 MiB is far larger than any cache here.
    """
    import numpy as np

    src = np.random.default_rng(0).random(nbytes // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    moved = 2 * src.nbytes
    into = median_time(lambda: np.copyto(dst, src), repeat=repeat, number=1)
    fresh = median_time(src.copy, repeat=repeat, number=1)
    return {
        "bytes": int(src.nbytes),
        "copyto_gbs": moved / into["median"] / 1e9,
        "copy_alloc_gbs": moved / fresh["median"] / 1e9,
    }


def machine_info(threads: int) -> dict:
    """What the numbers depend on: CPU, load, Python and the versions of every library present."""
    from importlib import metadata

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for dist in ("symgrad", "numpy", "sympy", "numba", "llvmlite", "scipy", "jax", "jaxlib",
                 "torch", "pytensor", "scikit-learn"):  # fmt: skip
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:  # which library symgrad's matrix products call (SYMGRAD_BLAS)
        from symgrad.codegen.blas_select import backend

        blas = backend()
    except Exception as exc:  # symgrad missing or a bad SYMGRAD_BLAS: say so, keep the run
        blas = f"unknown ({type(exc).__name__})"
    return {
        "cpu": cpu,
        "symgrad_blas": blas,
        "cores": os.cpu_count(),
        "threads": threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_start": _loadavg(),
        "versions": versions,
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux/macOS
        return None


def busy_warning() -> str | None:
    """A warning when other processes keep the CPUs busy (the medians then carry their noise)."""
    load = _loadavg()
    cores = os.cpu_count() or 1
    if load and load[0] > 0.75 * cores:
        return (
            f"warning: 1-minute load average {load[0]} on {cores} cores; other processes "
            "share the CPU, so absolute times are inflated and ratios are noisier"
        )
    return None


def write_json(path: Path, payload: dict) -> Path:
    """Write ``payload`` (plus a timestamp and the end-of-run load) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(payload)
    payload.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    if "machine" in payload:
        payload["machine"] = dict(payload["machine"], loadavg_end=_loadavg())
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n")
    # Replace in one step so a reader (or an interrupted run) never sees half a file.
    os.replace(tmp, path)
    return path


def _json_default(obj):
    # NumPy scalars leak into results easily; store them as plain numbers.
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain-text table: text columns left-aligned, numeric columns right-aligned."""
    rows = [[_cell(c) for c in r] for r in rows]
    numeric = [
        all(_is_number(r[i]) or r[i] == "" for r in rows) if rows else False
        for i in range(len(headers))
    ]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells):
        out = []
        for i, c in enumerate(cells):
            out.append(c.rjust(widths[i]) if numeric[i] else c.ljust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(list(headers)), sep] + [line(r) for r in rows])


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return fmt_number(value)
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("x"))
    except ValueError:
        return False
    return True


def fmt_number(value: float) -> str:
    """Three significant digits, without switching to exponent notation for usual magnitudes."""
    if value == 0 or not (1e-3 <= abs(value) < 1e6):
        return f"{value:.3g}"
    digits = max(0, 2 - int(f"{abs(value):e}".split("e")[1]))
    return f"{value:.{digits}f}"


#: Compile-time phases, each a new process, in the order they run: *first use* (empty model cache
#: and empty kernel cache: symgrad's fastmath kernels are compiled too, once per installation),
#: *cold* (a model never compiled before; kernels cached) and *warm* (the same model again).
COMPILE_PHASES = ("first use", "cold", "warm")


def compile_phase_envs(tmp: str, env: dict) -> list[tuple[str, dict]]:
    """``(phase, environment)`` per :data:`COMPILE_PHASES` entry, cache folders inside ``tmp``."""
    folders = {name: os.path.join(tmp, name) for name in ("kernels", "first", "model")}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    kernels = {"SYMGRAD_KERNEL_CACHE_DIR": folders["kernels"]}
    first = dict(env, SYMGRAD_CACHE_DIR=folders["first"], **kernels)
    model = dict(env, SYMGRAD_CACHE_DIR=folders["model"], **kernels)
    return [("first use", first), ("cold", model), ("warm", model)]


_FLOOR_MODULE = """
from numba import njit


@njit(cache=True)
def one(x):
    return x + 1.0
"""

_FLOOR_CHILD = r"""
import sys, time, json
sys.path.insert(0, sys.argv[1])
t0 = time.perf_counter()
import numba
t1 = time.perf_counter()
import numba_floor_module
numba_floor_module.one(1.0)
t2 = time.perf_counter()
print(json.dumps({"import_numba_s": t1 - t0, "first_cached_call_s": t2 - t1}))
"""


def numba_floor(tmp: str, env: dict) -> dict:
    """Numba's own cost of a warm start, in a new process: ``import numba`` and the first call
    of a trivial function loaded from Numba's cache (its target context loads every registry
    then, SciPy's BLAS check included). A warm symgrad start pays this before any of its own
    work, so it is the floor the warm compile figures are to be read against.

    The function is cached in ``tmp`` by a first process; a second one is measured.
    """
    folder = os.path.join(tmp, "numba-floor")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "numba_floor_module.py"), "w", encoding="utf-8") as f:
        f.write(_FLOOR_MODULE)
    env = dict(env, NUMBA_CACHE_DIR=os.path.join(folder, "cache"))
    out: dict = {}
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", _FLOOR_CHILD, folder], env=env,
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode:
            return {"error": proc.stderr.strip().splitlines()[-1:]}
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["total_s"] = out["import_numba_s"] + out["first_cached_call_s"]
    return out


def median_of_runs(runs: list[dict]) -> dict:
    """Per phase, the median of each numeric metric over ``runs`` (phase -> metrics dicts).

    Compile times on a shared machine vary by tens of percent from one process to the next, so
    the compile tables repeat each phase and quote medians; ``runs`` records how many runs each
    median has and ``<metric>_all`` keeps every run's value. A phase that failed in any run
    keeps that run's error.
    """
    out: dict = {}
    for phase in runs[0]:
        results = [r[phase] for r in runs]
        failed = [r for r in results if "error" in r]
        if failed:
            out[phase] = failed[0]
            continue
        merged: dict = {"runs": len(results)}
        for key, value in results[0].items():
            values = [r.get(key) for r in results]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                ints = all(isinstance(v, int) for v in values)  # counts stay counts
                merged[key] = (statistics.median_low if ints else statistics.median)(values)
                merged[f"{key}_all"] = values
            else:
                merged[key] = value
        out[phase] = merged
    return out


def compile_runs(compile_results: dict) -> int:
    """How many runs the medians of a compile table (item -> phase -> metrics) are over."""
    phases = next(iter(compile_results.values()), {})
    return max((p.get("runs", 1) for p in phases.values()), default=1)


def run_thread_children(script: str, threads: Iterable[int], child_args: list[str]) -> dict:
    """Run ``script --child T`` once per thread count ``T`` and collect their JSON results.

    Each child is a fresh process so it can pin its libraries' threads before importing them;
    the thread variables inherited from this process are removed so the child sets its own.
    """
    import tempfile

    results: dict = {}
    for t in threads:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            out = Path(f.name)
        cmd = [sys.executable, script, "--child", str(t), "--child-out", str(out), *child_args]
        env = dict(os.environ)
        for name in thread_env(t):
            env.pop(name, None)
        proc = subprocess.run(cmd, env=env)
        if proc.returncode:
            print(f"child for {t} thread(s) failed with code {proc.returncode}")
            continue
        results[str(t)] = json.loads(out.read_text())
        out.unlink()
    return results
