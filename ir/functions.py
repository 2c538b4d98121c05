"""SymPy function classes that symgrad adds to the elementwise vocabulary.

They are ordinary SymPy functions (they print, evaluate numerically and differentiate in SymPy),
with derivatives written to reuse the function's own value.
"""

from __future__ import annotations

import sympy as sp

from .ops_elementwise import register_elementwise_function


@register_elementwise_function
class logaddexp(sp.Function):  # noqa: N801 - SymPy function names are lower case
    """``log(exp(a0) + exp(a1) + ...)`` computed without overflow.

    The derivative with respect to ``a_i`` is the softmax weight ``exp(a_i - logaddexp(a))``.
    """

    nargs = None

    def fdiff(self, argindex=1):
        return sp.exp(self.args[argindex - 1] - self)

    def _eval_evalf(self, prec):
        args = [a.evalf(prec) for a in self.args]
        if all(a.is_number for a in args):
            m = sp.Max(*args)
            return (m + sp.log(sp.Add(*[sp.exp(a - m) for a in args]))).evalf(prec)
        return None

    def _eval_rewrite_as_log(self, *args, **kwargs):
        return sp.log(sp.Add(*[sp.exp(a) for a in args]))
