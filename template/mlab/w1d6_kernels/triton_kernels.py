"""GPU kernels in Triton: programs over blocks instead of threads.

A Triton kernel (`@triton.jit`) is the body of one PROGRAM, which handles a whole block of data at
once: `tl.program_id(0)` says which block, `tl.arange(0, BLOCK)` gives the BLOCK offsets inside it,
`tl.load(ptr + offsets, mask=...)` / `tl.store(...)` move whole blocks between global memory and
registers, and `tl.max`, `tl.sum`, `tl.dot` reduce or multiply blocks. The compiler spreads a
program over the threads of a CUDA block and manages shared memory and synchronization for you.
Block sizes are `tl.constexpr` (compile-time constants, powers of two): the mask switches off the
lanes that fall outside the data.

Wrappers take torch tensors (kernels receive them as pointers to their first element) and write
into `out` (allocated for you when None). Launch with `kernel[grid](args..., BLOCK=...)`, where grid
is a tuple of program counts. Compute in float32 in the kernel. Read docs/w1d6_kernels.md.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from jaxtyping import Float
from torch import Tensor

ADD_BLOCK = 1024  # elements per program of `add`
BLOCK_M, BLOCK_N, BLOCK_K = 64, 64, 32  # tile of c per program, and the k-step, of `matmul`


# -- elementwise ---------------------------------------------------------------------------------


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """out[i] = x[i] + y[i] for the BLOCK offsets i of program pid: pid * BLOCK + arange(BLOCK),
    masked to i < n (the last program sticks out past the end)."""
    raise NotImplementedError("add_kernel: see docs/w1d6_kernels.md#add-triton")


def add(
    x: Float[Tensor, " n"], y: Float[Tensor, " n"], out: Tensor | None = None
) -> Float[Tensor, " n"]:
    """x + y with cdiv(n, ADD_BLOCK) programs of ADD_BLOCK elements each."""
    out = torch.empty_like(x) if out is None else out
    raise NotImplementedError("add (Triton): see docs/w1d6_kernels.md#add-triton")
    return out


# -- row-wise: softmax and layernorm --------------------------------------------------------------


@triton.jit
def softmax_kernel(x_ptr, out_ptr, n_cols, x_row_stride, out_row_stride, BLOCK: tl.constexpr):
    """Softmax of row pid, fused: one load, max, exp, sum, one store (BLOCK >= n_cols).

    Pad the masked lanes with -inf so that they neither win the max nor add to the sum
    (exp(-inf) = 0), and subtract the row max before exp so that it cannot overflow.
    """
    raise NotImplementedError("softmax_kernel: see docs/w1d6_kernels.md#softmax")


def softmax(x: Float[Tensor, "m n"], out: Tensor | None = None) -> Float[Tensor, "m n"]:
    """Softmax over each row: one program per row, BLOCK = the next power of two >= n."""
    out = torch.empty_like(x) if out is None else out
    raise NotImplementedError("softmax: see docs/w1d6_kernels.md#softmax")
    return out


# fmt: off
@triton.jit
def layernorm_kernel(
    x_ptr, weight_ptr, bias_ptr, out_ptr, n_cols, x_row_stride, out_row_stride, eps,
    BLOCK: tl.constexpr,
):
    # fmt: on
    """LayerNorm of row pid: (x - mean) / sqrt(var + eps) * weight + bias, with the mean and the
    (biased) variance over the n_cols real columns only: masked lanes must not count."""
    raise NotImplementedError("layernorm_kernel: see docs/w1d6_kernels.md#layernorm")  # noqa: E501


def layernorm(
    x: Float[Tensor, "m n"],
    weight: Float[Tensor, " n"],
    bias: Float[Tensor, " n"],
    eps: float = 1e-5,
    out: Tensor | None = None,
) -> Float[Tensor, "m n"]:
    """F.layer_norm over the last dimension, one program per row."""
    out = torch.empty_like(x) if out is None else out
    raise NotImplementedError("layernorm: see docs/w1d6_kernels.md#layernorm")
    return out


# -- tiled matmul with tl.dot --------------------------------------------------------------------


# fmt: off
@triton.jit
def matmul_kernel(
    a_ptr, b_ptr, c_ptr, M, N, K,
    stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    # fmt: on
    """The (BLOCK_M, BLOCK_N) tile (pid_m, pid_n) of c = a @ b.

    Rows rm = pid_m * BLOCK_M + arange(BLOCK_M), columns rn likewise; for each k-step load the
    (BLOCK_M, BLOCK_K) block of a and the (BLOCK_K, BLOCK_N) block of b (address = base + row *
    row stride + column * column stride, built by broadcasting rm[:, None] against rk[None, :]),
    with 0 where masked, and accumulate `tl.dot(a, b, acc, input_precision="ieee")` in float32
    ("ieee": true float32 products; GPUs would otherwise round inputs to tf32's 10-bit mantissa).
    """
    raise NotImplementedError("matmul_kernel: see docs/w1d6_kernels.md#matmul-triton")  # noqa: E501


def matmul(
    a: Float[Tensor, "m k"], b: Float[Tensor, "k n"], out: Tensor | None = None
) -> Float[Tensor, "m n"]:
    """a @ b on a 2-D grid of (cdiv(m, BLOCK_M), cdiv(n, BLOCK_N)) programs."""
    out = a.new_empty(a.shape[0], b.shape[1]) if out is None else out
    raise NotImplementedError("matmul (Triton): see docs/w1d6_kernels.md#matmul-triton")  # noqa: E501
    return out
