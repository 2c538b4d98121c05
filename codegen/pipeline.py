"""The Numba compiler pipeline for generated modules: Numba's own, minus passes they never need.

Why: a cold compile of a training step is mostly Numba (an LSTM step: ~12 s, of which ~5 s is
Numba's front end before lowering). Numba's default pipeline runs passes for Python features that
symgrad's generated code never contains: closures and comprehensions (``InlineClosureLikes``,
``MakeFunctionToJitFunction``), ``literal_unroll`` and ``literally`` calls, inlining of
``inline="always"`` Python functions, dead-branch pruning of constant conditions, and the
array-expression rewrite after typing (generated code writes its loops out; it has no
whole-array arithmetic to fuse). Each of them walks the whole function, several recompute its
liveness, and for a function of hundreds of statements they add up to seconds.

What stays: bytecode translation and IR processing, the generic rewrites (constant raises and
static indexing, which the ``IndexError`` checks and constant indices use), the dynamic-raise
rewrite, SSA (so a variable reassigned in a loop is typed per definition, exactly as with the
default pipeline), type inference, the inlining of overloads marked ``inline="always"`` (some of
Numba's own NumPy implementations), and lowering.

A generated function that used a feature outside this set would fail to compile with a Numba
error rather than compute something else; ``tests/test_pipeline.py`` compiles every kind of
generated module this way, and the whole test suite runs through it.
"""

from __future__ import annotations

from numba.core.compiler import CompilerBase
from numba.core.compiler_machinery import PassManager
from numba.core.typed_passes import (
    AnnotateTypes,
    InlineOverloads,
    IRLegalization,
    NativeLowering,
    NoPythonBackend,
    NoPythonSupportedFeatureValidation,
    NopythonTypeInference,
    PreLowerStripPhis,
)
from numba.core.untyped_passes import (
    FixupArgs,
    GenericRewrites,
    IRProcessing,
    ReconstructSSA,
    RewriteDynamicRaises,
    TranslateByteCode,
)


class GeneratedCodePipeline(CompilerBase):
    """Numba's nopython pipeline without the passes generated code never needs (see module)."""

    def define_pipelines(self):
        pm = PassManager("symgrad_generated")
        pm.add_pass(TranslateByteCode, "analyzing bytecode")
        pm.add_pass(FixupArgs, "fix up args")
        pm.add_pass(IRProcessing, "processing IR")
        pm.add_pass(GenericRewrites, "constant raises and static getitems")
        pm.add_pass(RewriteDynamicRaises, "rewrite dynamic raises")
        pm.add_pass(ReconstructSSA, "ssa")
        pm.add_pass(NopythonTypeInference, "nopython frontend")
        pm.add_pass(PreLowerStripPhis, "remove phis nodes")
        pm.add_pass(InlineOverloads, "inline overloaded functions")
        pm.add_pass(NoPythonSupportedFeatureValidation, "validate features")
        pm.add_pass(IRLegalization, "ensure IR is legal prior to lowering")
        pm.add_pass(AnnotateTypes, "annotate types")
        pm.add_pass(NativeLowering, "native lowering")
        pm.add_pass(NoPythonBackend, "nopython mode backend")
        pm.finalize()
        return [pm]
