"""symgrad.nn: the neural-network vocabulary SymPy lacks, as SymPy expressions.

Activations (elementwise; on matrices they broadcast): ``sigmoid``, ``tanh``, ``relu``,
``leaky_relu``, ``prelu``, ``hard_tanh``, ``softplus``, ``log_sigmoid``, ``xlogy``.
Reductions and normalisations: ``sum``, ``mean``, ``logsumexp``, ``softmax``, ``log_softmax``.
Losses and penalties: ``cross_entropy``, ``cross_entropy_from_probs``, ``binary_cross_entropy``,
``mse``, ``kl_divergence``, ``hinge``, ``l1``, ``l2``.
Embeddings (rows chosen by an integer ``Indices`` input, row-sparse gradients): ``embedding``,
``embedding_bag``, ``embedding_scores``, ``hierarchical_softmax_nll``.

Importing this package registers everything with the compiler: the functions join the
elementwise vocabulary with stable Numba printers, the matrix classes get their lowerings (to
max-shifted compositions of elementwise ops and sums), and the stabilising rewrites learn the
activations they rewrite to.

Examples
--------
>>> import numpy as np, sympy as sp, symgrad as sg
>>> from symgrad import nn
>>> n = sp.Symbol("n")
>>> X, W, Y = sp.MatrixSymbol("X", n, 4), sp.MatrixSymbol("W", 4, 3), sp.MatrixSymbol("Y", n, 3)
>>> loss = nn.cross_entropy(nn.relu(X * W), Y)
>>> f = sg.compile(loss, wrt=[W])
>>> x, y = np.ones((2, 4)), np.array([[1.0, 0, 0], [0, 1.0, 0]])
>>> value, (dW,) = f.value_and_grad(X=x, W=np.zeros((4, 3)), Y=y)
>>> round(float(value), 6), dW.shape
(1.098612, (4, 3))
"""

from ..codegen import emit_nn
from ..codegen.printer import register_printer
from ..compiler import lower_embedding, lower_nn
from ..compiler.lower import register_lowering
from ..compiler.passes import stabilize_nn
from .activations import (
    hard_tanh,
    leaky_relu,
    log_sigmoid,
    prelu,
    relu,
    sigmoid,
    softplus,
    tanh,
    xlogy,
)
from .broadcast import BroadcastApply, broadcast_apply
from .embedding import (
    Embedding,
    EmbeddingBag,
    EmbeddingScores,
    HierarchicalSoftmaxNLL,
    Indices,
    embedding,
    embedding_bag,
    embedding_scores,
    hierarchical_softmax_nll,
)
from .losses import (
    binary_cross_entropy,
    cross_entropy,
    cross_entropy_from_probs,
    hinge,
    kl_divergence,
    l1,
    l2,
    mse,
)
from .reductions import (
    LogSoftmax,
    LogSumExp,
    LogSumExpAll,
    ReduceSum,
    Softmax,
    SumAll,
    log_softmax,
    logsumexp,
    mean,
    softmax,
    sum,  # noqa: A004 - the NumPy name, used as nn.sum
)

for _cls in (sigmoid, softplus, log_sigmoid, relu, leaky_relu, prelu, hard_tanh, xlogy):
    register_printer(_cls, emit_nn.PRINTERS[_cls.__name__])

for _cls, _lowering in (
    (BroadcastApply, lower_nn.lower_broadcast_apply),
    (ReduceSum, lower_nn.lower_reduce_sum),
    (SumAll, lower_nn.lower_sum_all),
    (LogSumExp, lower_nn.lower_logsumexp),
    (LogSumExpAll, lower_nn.lower_logsumexp_all),
    (LogSoftmax, lower_nn.lower_log_softmax),
    (Softmax, lower_nn.lower_softmax),
    (Indices, lower_embedding.lower_indices),
    (Embedding, lower_embedding.lower_embedding),
    (EmbeddingBag, lower_embedding.lower_embedding_bag),
    (EmbeddingScores, lower_embedding.lower_embedding_scores),
    (HierarchicalSoftmaxNLL, lower_embedding.lower_hierarchical_softmax_nll),
):
    register_lowering(_cls)(_lowering)

stabilize_nn.provide(sigmoid=sigmoid, softplus=softplus, log_sigmoid=log_sigmoid)
del _cls, _lowering

__all__ = [
    "BroadcastApply", "broadcast_apply", "hard_tanh", "leaky_relu", "log_sigmoid", "prelu",
    "relu", "sigmoid", "softplus", "tanh", "xlogy",
    "LogSoftmax", "LogSumExp", "LogSumExpAll", "ReduceSum", "Softmax", "SumAll",
    "log_softmax", "logsumexp", "mean", "softmax", "sum",
    "binary_cross_entropy", "cross_entropy", "cross_entropy_from_probs", "hinge",
    "kl_divergence", "l1", "l2", "mse",
    "Embedding", "EmbeddingBag", "EmbeddingScores", "HierarchicalSoftmaxNLL", "Indices",
    "embedding", "embedding_bag", "embedding_scores", "hierarchical_softmax_nll",
]  # fmt: skip
