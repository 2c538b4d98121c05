"""Mark a compiled Numba kernel ``alwaysinline`` so LLVM inlines it into every caller.

Why: the fastmath kernels vectorise only once they are inlined into the calling loop (a call left
in a loop stops LLVM's loop vectoriser). LLVM's inliner weighs each call against a cost threshold,
and in a large caller, a whole training step with a dozen loops, it kept the calls: the LSTM gate
loop ran 5x slower than the same loop in a small function (``benchmarks/bench_rnn.py``).
``alwaysinline`` takes the decision away from the cost model.

How: Numba links a kernel's LLVM module into each caller that uses it. This module rewrites the
kernel's ``define`` line in that module once, before any caller links it. llvmlite's own
``add_function_attribute`` puts the attribute on the return value with LLVM 20, which the verifier
rejects, hence the round trip through the IR text. Only Numba's code library internals
``_final_module`` / ``_shared_module`` are touched; if they change in a later Numba, the kernel is
left as it was and only speed is lost.

``kernel_cache`` stores the marked module's IR text, so the compile and the rewrite happen once
per installation and later processes link the stored IR.
"""

from __future__ import annotations

import re

_DEFINE_TAIL = re.compile(r"(\s#\d+)?\s*\{\s*$")


def _with_attribute(ir_text: str, function_name: str) -> str | None:
    """``ir_text`` with ``alwaysinline`` on ``function_name``'s definition (None: not found)."""
    lines = ir_text.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("define") and f"@{function_name}(" in line:
            if "noinline" in line or "optnone" in line:
                return None
            tail = _DEFINE_TAIL.search(line)
            if tail is None:
                return None
            lines[k] = line[: tail.start()] + " alwaysinline" + (tail.group(1) or "") + " {"
            return "\n".join(lines)
    return None


def force_inline(dispatcher, argtypes: tuple) -> bool:
    """Compile ``dispatcher`` for ``argtypes`` and make later callers always inline it.

    Parameters
    ----------
    dispatcher : numba.core.registry.CPUDispatcher
        An ``@njit`` function.
    argtypes : tuple of numba types
        The signature to compile and mark.

    Returns
    -------
    bool
        True when the kernel is marked (now or earlier), False when Numba's internals did not
        allow it (the kernel still works, as an ordinary call).
    """
    cres = dispatcher.overloads.get(argtypes)
    if cres is None:
        dispatcher.compile(argtypes)
        cres = dispatcher.overloads[argtypes]
    library = cres.library
    if getattr(library, "_symgrad_always_inline", False):
        return True
    try:
        import llvmlite.binding as llvm

        text = _with_attribute(str(library._final_module), cres.fndesc.llvm_func_name)
        if text is None:
            return False
        module = llvm.parse_assembly(text)
        module.verify()
        library._final_module = module
        library._shared_module = None
    except (AttributeError, RuntimeError):
        return False
    library._symgrad_always_inline = True
    return True
