"""GPU kernels in Numba CUDA: the CUDA thread model written in Python.

A kernel (`@cuda.jit`) is the body of ONE thread. Launching `kernel[blocks, threads](args)` runs it
on a grid of `blocks` thread blocks of `threads` threads each; a thread finds its place with
`cuda.threadIdx`, `cuda.blockIdx`, `cuda.blockDim` (or `cuda.grid(ndim)` for the global index).
Threads of one block share fast `cuda.shared.array` memory and wait for each other at
`cuda.syncthreads()`; threads of different blocks only meet through global memory and atomics.

Each exercise is a kernel plus the host function ("wrapper") that picks the launch configuration
and launches it. Wrappers take torch tensors and write into `out` (allocated for you when None):
the graders hand you an `out` with guard values around it, so write inside it only. Compute in the
kernel, in float32: the graders check that the output comes from the kernel launch.
Read docs/w1d6_kernels.md first.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float, Int
from numba import cuda, float32
from torch import Tensor

THREADS = 128  # threads per block of the 1-D kernels and the row reductions (a power of two)
MAX_BLOCKS = 1024  # most blocks a grid-stride kernel launches (a few per streaming multiprocessor)
BLOCK_2D = (32, 8)  # (x, y) threads per block of 2-D kernels: x runs along contiguous columns
TILE = 16  # side of the square tiles of the tiled matmul


def dev(t: Tensor):
    """What a Numba kernel takes for the tensor `t`, without a copy: on a GPU a device-array view of
    the same memory; in the simulator (CPU tensors) the tensor's NumPy view."""
    if t.is_cuda:
        return cuda.as_cuda_array(t.detach(), sync=False)  # same stream as torch: no sync needed
    return t.detach().numpy()


def cdiv(a: int, b: int) -> int:
    """Ceiling division: how many blocks of b cover a items."""
    return (a + b - 1) // b


# -- elementwise ---------------------------------------------------------------------------------


@cuda.jit
def add_kernel(x, y, out):
    """out[i] = x[i] + y[i] for the one i this thread owns."""
    # BEGIN SOLUTION: raise NotImplementedError("add_kernel: see docs/w1d6_kernels.md#add")
    i = cuda.grid(1)  # blockIdx.x * blockDim.x + threadIdx.x
    if i < out.shape[0]:  # the last block sticks out past the end
        out[i] = x[i] + y[i]
    # END SOLUTION


def add(
    x: Float[Tensor, " n"], y: Float[Tensor, " n"], out: Tensor | None = None
) -> Float[Tensor, " n"]:
    """x + y with one thread per element: cdiv(n, THREADS) blocks of THREADS threads."""
    out = torch.empty_like(x) if out is None else out
    # BEGIN SOLUTION
    add_kernel[cdiv(x.shape[0], THREADS), THREADS](dev(x), dev(y), dev(out))
    # END SOLUTION
    return out


@cuda.jit
def scale_add_kernel(a, x, y, out):
    """out = a * x + y with a grid-stride loop: thread i handles i, i + stride, i + 2 * stride...
    where stride = cuda.gridsize(1) is the number of threads in the grid."""
    # BEGIN SOLUTION: raise NotImplementedError("scale_add_kernel: see docs/w1d6_kernels.md#scale_add")  # noqa: E501
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.shape[0], stride):
        out[i] = a * x[i] + y[i]
    # END SOLUTION


def scale_add(
    a: float, x: Float[Tensor, " n"], y: Float[Tensor, " n"], out: Tensor | None = None
) -> Float[Tensor, " n"]:
    """a * x + y ("saxpy"), launching at most MAX_BLOCKS blocks of THREADS threads, however long x
    is: each thread loops over the elements it owns."""
    out = torch.empty_like(x) if out is None else out
    # BEGIN SOLUTION
    blocks = min(MAX_BLOCKS, cdiv(x.shape[0], THREADS))
    scale_add_kernel[blocks, THREADS](a, dev(x), dev(y), dev(out))
    # END SOLUTION
    return out


@cuda.jit
def gather_kernel(x, idx, out):
    """out[r, c] = x[idx[r], c], one thread per output element on a 2-D grid whose x dimension
    runs along the columns c (neighbouring threads then read neighbouring addresses)."""
    # BEGIN SOLUTION: raise NotImplementedError("gather_kernel: see docs/w1d6_kernels.md#gather")
    c, r = cuda.grid(2)  # x index first: the column
    if r < out.shape[0] and c < out.shape[1]:
        out[r, c] = x[idx[r], c]
    # END SOLUTION


def gather(
    x: Float[Tensor, "n d"], idx: Int[Tensor, " k"], out: Tensor | None = None
) -> Float[Tensor, "k d"]:
    """Rows idx of x (an embedding lookup), on a 2-D grid of BLOCK_2D blocks."""
    out = x.new_empty(idx.shape[0], x.shape[1]) if out is None else out
    # BEGIN SOLUTION
    bx, by = BLOCK_2D
    grid = (cdiv(x.shape[1], bx), cdiv(idx.shape[0], by))  # (blocks along columns, along rows)
    gather_kernel[grid, BLOCK_2D](dev(x), dev(idx), dev(out))
    # END SOLUTION
    return out


# -- reductions ----------------------------------------------------------------------------------


@cuda.jit
def sum_rows_kernel(x, out):
    """out[r] = sum of row r, one thread per row looping over its columns."""
    # BEGIN SOLUTION: raise NotImplementedError("sum_rows_kernel: see docs/w1d6_kernels.md#sum_rows")  # noqa: E501
    r = cuda.grid(1)
    if r < x.shape[0]:
        total = float32(0.0)
        for c in range(x.shape[1]):
            total += x[r, c]
        out[r] = total
    # END SOLUTION


def sum_rows(x: Float[Tensor, "m n"], out: Tensor | None = None) -> Float[Tensor, " m"]:
    """Sum of each row, one thread per row."""
    out = x.new_empty(x.shape[0]) if out is None else out
    # BEGIN SOLUTION
    sum_rows_kernel[cdiv(x.shape[0], THREADS), THREADS](dev(x), dev(out))
    # END SOLUTION
    return out


@cuda.jit
def block_sum_kernel(x, partial):
    """partial[b] = sum of x[b * THREADS : (b + 1) * THREADS], by a tree in shared memory.

    Each thread copies one element into `cuda.shared.array(THREADS, float32)` (0 past the end);
    then, for stride = THREADS/2, THREADS/4, ..., 1, thread t < stride adds slot t + stride into
    slot t. Every step reads what other threads wrote: `cuda.syncthreads()` between steps.
    """
    # BEGIN SOLUTION: raise NotImplementedError("block_sum_kernel: see docs/w1d6_kernels.md#block_sum")  # noqa: E501
    shared = cuda.shared.array(THREADS, float32)
    t = cuda.threadIdx.x
    i = cuda.grid(1)
    shared[t] = x[i] if i < x.shape[0] else 0.0
    cuda.syncthreads()
    stride = THREADS // 2
    while stride > 0:
        if t < stride:
            shared[t] += shared[t + stride]
        cuda.syncthreads()
        stride //= 2
    if t == 0:
        partial[cuda.blockIdx.x] = shared[0]
    # END SOLUTION


def block_sum(x: Float[Tensor, " n"], out: Tensor | None = None) -> Float[Tensor, " blocks"]:
    """One partial sum per block of THREADS consecutive elements (blocks = cdiv(n, THREADS))."""
    out = x.new_empty(cdiv(x.shape[0], THREADS)) if out is None else out
    # BEGIN SOLUTION
    block_sum_kernel[out.shape[0], THREADS](dev(x), dev(out))
    # END SOLUTION
    return out


def sum_all(x: Float[Tensor, " n"], out: Tensor | None = None) -> Float[Tensor, ""]:
    """The sum of all of x: block_sum again and again until one value is left (blocks cannot wait
    for each other inside a kernel, so a reduction over the whole grid takes several launches)."""
    out = x.new_empty(()) if out is None else out
    # BEGIN SOLUTION
    while x.shape[0] > 1:
        x = block_sum(x)
    out.copy_(x[0])  # a one-element copy of the kernel's result
    # END SOLUTION
    return out


@cuda.jit
def softmax_rows_kernel(x, out):
    """Softmax of row blockIdx.x by one block of THREADS threads.

    Each thread strides over the columns (t, t + THREADS, ...): first a running max, reduced over
    the block in shared memory; then the sum of exp(x - max), reduced the same way; then it writes
    exp(x - max) / sum. Subtracting the max keeps exp from overflowing.
    """
    # BEGIN SOLUTION: raise NotImplementedError("softmax_rows_kernel: see docs/w1d6_kernels.md#softmax_rows")  # noqa: E501
    shared = cuda.shared.array(THREADS, float32)
    row, t = cuda.blockIdx.x, cuda.threadIdx.x
    n = x.shape[1]
    m = float32(-math.inf)
    for c in range(t, n, THREADS):
        m = max(m, x[row, c])
    shared[t] = m
    cuda.syncthreads()
    stride = THREADS // 2
    while stride > 0:
        if t < stride:
            shared[t] = max(shared[t], shared[t + stride])
        cuda.syncthreads()
        stride //= 2
    m = shared[0]
    cuda.syncthreads()  # all have read the max before the slots are reused
    total = float32(0.0)
    for c in range(t, n, THREADS):
        total += math.exp(x[row, c] - m)
    shared[t] = total
    cuda.syncthreads()
    stride = THREADS // 2
    while stride > 0:
        if t < stride:
            shared[t] += shared[t + stride]
        cuda.syncthreads()
        stride //= 2
    total = shared[0]
    for c in range(t, n, THREADS):
        out[row, c] = math.exp(x[row, c] - m) / total
    # END SOLUTION


def softmax_rows(x: Float[Tensor, "m n"], out: Tensor | None = None) -> Float[Tensor, "m n"]:
    """Softmax over each row: one block of THREADS threads per row."""
    out = torch.empty_like(x) if out is None else out
    # BEGIN SOLUTION
    softmax_rows_kernel[x.shape[0], THREADS](dev(x), dev(out))
    # END SOLUTION
    return out


# -- atomics -------------------------------------------------------------------------------------


@cuda.jit
def histogram_kernel(values, counts):
    """counts[values[i]] += 1 for this thread's i. Many threads hit the same bin at once: a plain
    `+=` (read, add, write) loses updates; `cuda.atomic.add` does the three steps as one."""
    # BEGIN SOLUTION: raise NotImplementedError("histogram_kernel: see docs/w1d6_kernels.md#histogram")  # noqa: E501
    i = cuda.grid(1)
    if i < values.shape[0]:
        cuda.atomic.add(counts, values[i], 1)
    # END SOLUTION


def histogram(
    values: Int[Tensor, " n"], bins: int, out: Tensor | None = None
) -> Int[Tensor, " bins"]:
    """How many times each of 0..bins-1 occurs in values (int32 counts), like torch.bincount.
    The counts start from zero: clear `out` before the launch."""
    out = torch.empty(bins, dtype=torch.int32, device=values.device) if out is None else out
    # BEGIN SOLUTION
    out.zero_()
    histogram_kernel[cdiv(values.shape[0], THREADS), THREADS](dev(values), dev(out))
    # END SOLUTION
    return out


# -- tiled matmul --------------------------------------------------------------------------------


@cuda.jit
def matmul_kernel(a, b, c):
    """c = a @ b, one thread per element of c, blocks of TILE x TILE threads.

    Thread (tx, ty) of block (bx, by) owns c[row, col] with row = by * TILE + ty and
    col = bx * TILE + tx. For each k-tile t the block copies a[block rows, t*TILE : (t+1)*TILE] and
    b[t*TILE : (t+1)*TILE, block cols] into two shared TILE x TILE arrays (each thread one element
    of each, 0 outside the matrices), waits, accumulates its dot product over the tile, and waits
    again before the tiles are overwritten. Each element of a and b is then read from global
    memory once per tile instead of once per output element.
    """
    # BEGIN SOLUTION: raise NotImplementedError("matmul_kernel: see docs/w1d6_kernels.md#matmul")
    a_tile = cuda.shared.array((TILE, TILE), float32)
    b_tile = cuda.shared.array((TILE, TILE), float32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    row = cuda.blockIdx.y * TILE + ty
    col = cuda.blockIdx.x * TILE + tx
    m, k_total, n = a.shape[0], a.shape[1], b.shape[1]
    acc = float32(0.0)
    for t in range((k_total + TILE - 1) // TILE):  # k-tiles, the last one partial
        k = t * TILE + tx  # column of a this thread copies
        a_tile[ty, tx] = a[row, k] if row < m and k < k_total else 0.0
        k = t * TILE + ty  # row of b this thread copies
        b_tile[ty, tx] = b[k, col] if k < k_total and col < n else 0.0
        cuda.syncthreads()
        for j in range(TILE):
            acc += a_tile[ty, j] * b_tile[j, tx]
        cuda.syncthreads()
    if row < m and col < n:
        c[row, col] = acc
    # END SOLUTION


def matmul(
    a: Float[Tensor, "m k"], b: Float[Tensor, "k n"], out: Tensor | None = None
) -> Float[Tensor, "m n"]:
    """a @ b with the tiled kernel: blocks of (TILE, TILE) threads covering c."""
    out = a.new_empty(a.shape[0], b.shape[1]) if out is None else out
    # BEGIN SOLUTION
    grid = (cdiv(b.shape[1], TILE), cdiv(a.shape[0], TILE))  # (blocks along columns, along rows)
    matmul_kernel[grid, (TILE, TILE)](dev(a), dev(b), dev(out))
    # END SOLUTION
    return out
