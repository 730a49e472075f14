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
    # BEGIN SOLUTION: raise NotImplementedError("add_kernel: see docs/w1d6_kernels.md#add-triton")
    pid = tl.program_id(0)
    offsets = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, x + y, mask=mask)
    # END SOLUTION


def add(
    x: Float[Tensor, " n"], y: Float[Tensor, " n"], out: Tensor | None = None
) -> Float[Tensor, " n"]:
    """x + y with cdiv(n, ADD_BLOCK) programs of ADD_BLOCK elements each."""
    out = torch.empty_like(x) if out is None else out
    # BEGIN SOLUTION: raise NotImplementedError("add (Triton): see docs/w1d6_kernels.md#add-triton")
    n = x.numel()
    add_kernel[(triton.cdiv(n, ADD_BLOCK),)](x, y, out, n, BLOCK=ADD_BLOCK)
    # END SOLUTION
    return out


# -- row-wise: softmax and layernorm --------------------------------------------------------------


@triton.jit
def softmax_kernel(x_ptr, out_ptr, n_cols, x_row_stride, out_row_stride, BLOCK: tl.constexpr):
    """Softmax of row pid, fused: one load, max, exp, sum, one store (BLOCK >= n_cols).

    Pad the masked lanes with -inf so that they neither win the max nor add to the sum
    (exp(-inf) = 0), and subtract the row max before exp so that it cannot overflow.
    """
    # BEGIN SOLUTION: raise NotImplementedError("softmax_kernel: see docs/w1d6_kernels.md#softmax")
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=-float("inf"))
    x = x - tl.max(x, axis=0)
    numerator = tl.exp(x)
    denominator = tl.sum(numerator, axis=0)
    tl.store(out_ptr + row * out_row_stride + cols, numerator / denominator, mask=mask)
    # END SOLUTION


def softmax(x: Float[Tensor, "m n"], out: Tensor | None = None) -> Float[Tensor, "m n"]:
    """Softmax over each row: one program per row, BLOCK = the next power of two >= n."""
    out = torch.empty_like(x) if out is None else out
    # BEGIN SOLUTION
    m, n = x.shape
    block = triton.next_power_of_2(n)
    num_warps = 4 if block <= 2048 else 8 if block <= 8192 else 16
    softmax_kernel[(m,)](x, out, n, x.stride(0), out.stride(0), BLOCK=block, num_warps=num_warps)
    # END SOLUTION
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
    # BEGIN SOLUTION: raise NotImplementedError("layernorm_kernel: see docs/w1d6_kernels.md#layernorm")  # noqa: E501
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=0.0)
    mean = tl.sum(x, axis=0) / n_cols
    centered = tl.where(mask, x - mean, 0.0)  # padding lanes would add mean^2 to the variance
    var = tl.sum(centered * centered, axis=0) / n_cols
    rstd = 1.0 / tl.sqrt(var + eps)
    weight = tl.load(weight_ptr + cols, mask=mask)
    bias = tl.load(bias_ptr + cols, mask=mask)
    tl.store(out_ptr + row * out_row_stride + cols, centered * rstd * weight + bias, mask=mask)
    # END SOLUTION


def layernorm(
    x: Float[Tensor, "m n"],
    weight: Float[Tensor, " n"],
    bias: Float[Tensor, " n"],
    eps: float = 1e-5,
    out: Tensor | None = None,
) -> Float[Tensor, "m n"]:
    """F.layer_norm over the last dimension, one program per row."""
    out = torch.empty_like(x) if out is None else out
    # BEGIN SOLUTION
    m, n = x.shape
    block = triton.next_power_of_2(n)
    num_warps = 4 if block <= 2048 else 8 if block <= 8192 else 16
    layernorm_kernel[(m,)](
        x, weight, bias, out, n, x.stride(0), out.stride(0), eps, BLOCK=block, num_warps=num_warps
    )
    # END SOLUTION
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
    # BEGIN SOLUTION: raise NotImplementedError("matmul_kernel: see docs/w1d6_kernels.md#matmul-triton")  # noqa: E501
    pid_m, pid_n = tl.program_id(0), tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + rk
        a_mask = (rm[:, None] < M) & (k[None, :] < K)
        b_mask = (k[:, None] < K) & (rn[None, :] < N)
        a_ptrs = a_ptr + rm[:, None] * stride_am + k[None, :] * stride_ak  # (BLOCK_M, BLOCK_K)
        b_ptrs = b_ptr + k[:, None] * stride_bk + rn[None, :] * stride_bn  # (BLOCK_K, BLOCK_N)
        a = tl.load(a_ptrs, mask=a_mask, other=0.0)
        b = tl.load(b_ptrs, mask=b_mask, other=0.0)
        acc = tl.dot(a, b, acc, input_precision="ieee")
    c_mask = (rm[:, None] < M) & (rn[None, :] < N)
    tl.store(c_ptr + rm[:, None] * stride_cm + rn[None, :] * stride_cn, acc, mask=c_mask)
    # END SOLUTION


def matmul(
    a: Float[Tensor, "m k"], b: Float[Tensor, "k n"], out: Tensor | None = None
) -> Float[Tensor, "m n"]:
    """a @ b on a 2-D grid of (cdiv(m, BLOCK_M), cdiv(n, BLOCK_N)) programs."""
    out = a.new_empty(a.shape[0], b.shape[1]) if out is None else out
    # BEGIN SOLUTION: raise NotImplementedError("matmul (Triton): see docs/w1d6_kernels.md#matmul-triton")  # noqa: E501
    (m, k), n = a.shape, b.shape[1]
    grid = (triton.cdiv(m, BLOCK_M), triton.cdiv(n, BLOCK_N))
    # fmt: off
    matmul_kernel[grid](
        a, b, out, m, n, k, *a.stride(), *b.stride(), *out.stride(),
        BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K,
    )
    # fmt: on
    # END SOLUTION
    return out
