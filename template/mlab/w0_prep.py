"""Day w0_prep: PyTorch array programming.

Every function here is one vectorized expression or a few: no Python loop over elements, rows or
batch entries (the graders check this by tracing your code on a small and a large input). Reach
for `einops` (rearrange / reduce / repeat), `torch.einsum`, broadcasting, advanced indexing,
`scatter_add_`, `cumsum` + `searchsorted` and `as_strided`. Read docs/w0_prep.md for the ideas.
"""

from __future__ import annotations

import torch
from einops import rearrange, reduce, repeat
from jaxtyping import Bool, Float, Int
from torch import Tensor

# -- einops ------------------------------------------------------------------------------------


def image_grid(images: Float[Tensor, "b c h w"], nrow: int) -> Float[Tensor, "c H W"]:
    """Tile a batch of images into a grid with `nrow` images per row (b is a multiple of nrow).

    Image i sits in grid row i // nrow, column i % nrow: H = (b // nrow) * h, W = nrow * w.
    """
    raise NotImplementedError("image_grid: see docs/w0_prep.md#image_grid")


def patchify(image: Float[Tensor, "c h w"], patch: int) -> Float[Tensor, "n d"]:
    """Cut an image into non-overlapping `patch` x `patch` squares, as a ViT does.

    Patches are numbered row-major (n = (h // patch) * (w // patch)); each is flattened
    channel-first into d = c * patch * patch values.
    """
    raise NotImplementedError("patchify: see docs/w0_prep.md#patchify")


def channel_means(images: Float[Tensor, "b c h w"]) -> Float[Tensor, " c"]:
    """Mean of each channel over the batch and both spatial dimensions."""
    raise NotImplementedError("channel_means: see docs/w0_prep.md#channel_means")


def max_pool_2x2(images: Float[Tensor, "b c h w"]) -> Float[Tensor, "b c h2 w2"]:
    """Max over each non-overlapping 2x2 block (h and w are even)."""
    raise NotImplementedError("max_pool_2x2: see docs/w0_prep.md#max_pool_2x2")


def repeat_rows(x: Float[Tensor, " n"], k: int) -> Float[Tensor, "k n"]:
    """Stack `k` copies of the vector `x` as the rows of a matrix."""
    raise NotImplementedError("repeat_rows: see docs/w0_prep.md#repeat_rows")


# -- einsum ------------------------------------------------------------------------------------


def einsum_trace(a: Float[Tensor, "n n"]) -> Float[Tensor, ""]:
    """The trace (sum of the diagonal) of a square matrix."""
    raise NotImplementedError("einsum_trace: see docs/w0_prep.md#einsum_trace")


def einsum_diagonal(a: Float[Tensor, "n n"]) -> Float[Tensor, " n"]:
    """The diagonal of a square matrix, as a vector."""
    raise NotImplementedError("einsum_diagonal: see docs/w0_prep.md#einsum_diagonal")


def einsum_outer(u: Float[Tensor, " n"], v: Float[Tensor, " m"]) -> Float[Tensor, "n m"]:
    """The outer product: out[i, j] = u[i] * v[j]."""
    raise NotImplementedError("einsum_outer: see docs/w0_prep.md#einsum_outer")


def einsum_batched_matmul(
    a: Float[Tensor, "b n k"], c: Float[Tensor, "b k m"]
) -> Float[Tensor, "b n m"]:
    """One matrix product per batch entry: out[b] = a[b] @ c[b]."""
    raise NotImplementedError("einsum_batched_matmul: see docs/w0_prep.md#einsum_batched_matmul")


def einsum_mv(a: Float[Tensor, "n m"], v: Float[Tensor, " m"]) -> Float[Tensor, " n"]:
    """A matrix times a vector: out[i] = sum_j a[i, j] v[j]."""
    raise NotImplementedError("einsum_mv: see docs/w0_prep.md#einsum_mv")


def einsum_mm(a: Float[Tensor, "n k"], b: Float[Tensor, "k m"]) -> Float[Tensor, "n m"]:
    """A matrix product: out[i, j] = sum_l a[i, l] b[l, j]."""
    raise NotImplementedError("einsum_mm: see docs/w0_prep.md#einsum_mm")


def einsum_inner(u: Float[Tensor, " n"], v: Float[Tensor, " n"]) -> Float[Tensor, ""]:
    """The inner (dot) product of two vectors, a 0-d tensor."""
    raise NotImplementedError("einsum_inner: see docs/w0_prep.md#einsum_inner")


# -- broadcasting and indexing -----------------------------------------------------------------


def pairwise_distances(x: Float[Tensor, "n d"], y: Float[Tensor, "m d"]) -> Float[Tensor, "n m"]:
    """Euclidean distance between every row of x and every row of y, by broadcasting."""
    raise NotImplementedError("pairwise_distances: see docs/w0_prep.md#pairwise_distances")


def gather_rows(x: Float[Tensor, "n d"], idx: Int[Tensor, " k"]) -> Float[Tensor, "k d"]:
    """Rows `idx` of x, in that order (indices may repeat)."""
    raise NotImplementedError("gather_rows: see docs/w0_prep.md#gather_rows")


def batched_index_select(
    x: Float[Tensor, "b n d"], idx: Int[Tensor, "b k"]
) -> Float[Tensor, "b k d"]:
    """For each batch entry b, the rows idx[b] of x[b]: out[b, j] = x[b, idx[b, j]]."""
    raise NotImplementedError("batched_index_select: see docs/w0_prep.md#batched_index_select")


def one_hot(labels: Int[Tensor, " n"], num_classes: int) -> Float[Tensor, "n c"]:
    """Float one-hot rows: out[i, labels[i]] = 1, zero elsewhere."""
    raise NotImplementedError("one_hot: see docs/w0_prep.md#one_hot")


def masked_mean(x: Float[Tensor, "b n"], mask: Bool[Tensor, "b n"]) -> Float[Tensor, " b"]:
    """Mean of each row over the entries where mask is True (0 for a row with none)."""
    raise NotImplementedError("masked_mean: see docs/w0_prep.md#masked_mean")


def segment_sum(
    values: Float[Tensor, "n d"], segment_ids: Int[Tensor, " n"], num_segments: int
) -> Float[Tensor, "s d"]:
    """Sum the rows of `values` that share a segment id: out[s] = sum of values[i] where ids[i] == s.

    Segments with no rows are zero. Use `scatter_add_` (or `index_add_`).
    """
    raise NotImplementedError("segment_sum: see docs/w0_prep.md#segment_sum")


# -- numerically stable reductions -------------------------------------------------------------


def logsumexp(x: Float[Tensor, "... n"]) -> Float[Tensor, "..."]:
    """log(sum(exp(x))) over the last dimension, finite even when exp(x) overflows.

    Subtract the maximum first: logsumexp(x) = m + log(sum(exp(x - m))).
    """
    raise NotImplementedError("logsumexp: see docs/w0_prep.md#logsumexp")


def softmax(x: Float[Tensor, "... n"]) -> Float[Tensor, "... n"]:
    """Softmax over the last dimension, stable for large inputs."""
    raise NotImplementedError("softmax: see docs/w0_prep.md#softmax")


def log_softmax(x: Float[Tensor, "... n"]) -> Float[Tensor, "... n"]:
    """Log of the softmax over the last dimension, computed without taking log of a softmax."""
    raise NotImplementedError("log_softmax: see docs/w0_prep.md#log_softmax")


def cross_entropy(logits: Float[Tensor, "n c"], targets: Int[Tensor, " n"]) -> Float[Tensor, ""]:
    """Mean negative log-likelihood of the target classes under softmax(logits)."""
    raise NotImplementedError("cross_entropy: see docs/w0_prep.md#cross_entropy")


# -- sampling and strides ----------------------------------------------------------------------


def sample_categorical(
    probs: Float[Tensor, "b k"], n: int, generator: torch.Generator | None = None
) -> Int[Tensor, "b n"]:
    """Draw n samples from each row's categorical distribution (rows sum to 1).

    Inverse-CDF sampling: draw u ~ U[0, 1) with `torch.rand(..., generator=generator)` and find
    where u falls in the cumulative sum with `torch.searchsorted`.
    """
    raise NotImplementedError("sample_categorical: see docs/w0_prep.md#sample_categorical")


def sliding_windows(x: Float[Tensor, " n"], size: int, stride: int = 1) -> Float[Tensor, "w size"]:
    """All windows of `size` consecutive elements, `stride` apart, as a view (no copy).

    Use `x.as_strided`: w = (n - size) // stride + 1 windows.
    """
    raise NotImplementedError("sliding_windows: see docs/w0_prep.md#sliding_windows")


def moving_average(x: Float[Tensor, " n"], size: int) -> Float[Tensor, " w"]:
    """Mean of each window of `size` consecutive elements (stride 1), built on sliding_windows."""
    raise NotImplementedError("moving_average: see docs/w0_prep.md#moving_average")


# -- computing through strided views -----------------------------------------------------------
# Each of these builds a view with `as_strided` from the input's own strides and storage offset
# (the input may itself be a non-contiguous view), then only multiplies and sums: no einsum,
# matmul, trace or diagonal.


def as_strided_trace(a: Float[Tensor, "n n"]) -> Float[Tensor, ""]:
    """The trace of a square matrix, as the sum of a strided view of its diagonal."""
    raise NotImplementedError("as_strided_trace: see docs/w0_prep.md#as_strided_trace")


def as_strided_mv(a: Float[Tensor, "n m"], v: Float[Tensor, " m"]) -> Float[Tensor, " n"]:
    """a @ v: view v as an (n, m) matrix whose rows are all v (stride 0 along rows), multiply
    elementwise by a, sum each row."""
    raise NotImplementedError("as_strided_mv: see docs/w0_prep.md#as_strided_mv")


def as_strided_mm(a: Float[Tensor, "n k"], b: Float[Tensor, "k m"]) -> Float[Tensor, "n m"]:
    """a @ b: view both as (n, m, k) tensors (a repeated along m, b transposed and repeated
    along n, with stride 0 for the repeats), multiply elementwise, sum over k."""
    raise NotImplementedError("as_strided_mm: see docs/w0_prep.md#as_strided_mm")
