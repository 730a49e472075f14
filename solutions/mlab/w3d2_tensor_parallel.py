"""Day w3d2_tensor_parallel: Megatron-style tensor parallelism.

Data parallelism copies the whole model onto every device; when the model itself no longer fits,
split each weight matrix instead. Following Megatron-LM (Shoeybi et al. 2019, "Megatron-LM:
Training Multi-Billion Parameter Language Models Using Model Parallelism"), W ranks each hold
1/W of every large matrix: the first linear layer of a pair is split by output features
(column-parallel), the second by input features (row-parallel), so a transformer block needs one
all-reduce in forward and one in backward for its attention and one of each for its MLP. You
write the two conjugate communication operators f and g, the parallel layers, attention split by
heads, the Megatron MLP, a vocabulary-parallel embedding and cross-entropy, and finally shard
transformers' GPT-2. Read docs/w3d2_tensor_parallel.md first.

Every rank runs the same code (SPMD): `dist.get_rank()` and `dist.get_world_size()` say which
shard a rank holds. Layers are built from the FULL weights (the same on every rank) and keep only
their own slice, in `nn.Linear`'s layout: weight (out_features, in_features).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn


def shard_range(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """The slice [start, end) of `size` items that rank `rank` holds: contiguous, equal blocks."""
    if size % world_size:
        raise ValueError(f"{size} is not divisible by the world size {world_size}")
    per_rank = size // world_size
    return rank * per_rank, (rank + 1) * per_rank


def my_range(size: int) -> tuple[int, int]:
    """`shard_range` for this process's rank and world size."""
    return shard_range(size, dist.get_rank(), dist.get_world_size())


# -- the conjugate operators f and g -----------------------------------------------------------


class CopyToParallelRegion(torch.autograd.Function):
    """Megatron's f: identity in forward, all-reduce (sum) of the gradient in backward.

    It sits where a replicated activation X enters a column-parallel layer. Every rank computes
    its part Y_r = X A_r from the same X, so dL/dX = sum_r dL/dY_r A_r^T: each rank only knows its
    own term and the terms must be summed over the ranks.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        # BEGIN SOLUTION
        return x.view_as(x)
        # END SOLUTION

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        # BEGIN SOLUTION
        grad = grad.contiguous().clone()  # never all-reduce a tensor autograd may share
        dist.all_reduce(grad)
        return grad
        # END SOLUTION


class ReduceFromParallelRegion(torch.autograd.Function):
    """Megatron's g: all-reduce (sum) in forward, identity in backward.

    It ends a row-parallel layer: each rank holds a partial sum X_r B_r of the output Y = X B;
    after the all-reduce every rank holds all of Y, and dL/d(X_r B_r) = dL/dY on every rank.
    Do not modify the input in place: return a new tensor.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        # BEGIN SOLUTION
        out = x.contiguous().clone()
        dist.all_reduce(out)
        return out
        # END SOLUTION

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        # BEGIN SOLUTION
        return grad
        # END SOLUTION


class GatherFromParallelRegion(torch.autograd.Function):
    """All-gather along the last dimension in forward; keep this rank's slice in backward.

    Rank r holds the features [r k, (r + 1) k) of a tensor whose last dimension is W k; the
    output holds all W k of them, in rank order, on every rank.
    """

    @staticmethod
    def forward(ctx, x: Float[Tensor, "... k"]) -> Float[Tensor, "... wk"]:
        # BEGIN SOLUTION
        world_size = dist.get_world_size()
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(world_size)]
        dist.all_gather(parts, x)
        ctx.k = x.shape[-1]
        return torch.cat(parts, dim=-1)  # (..., W k)
        # END SOLUTION

    @staticmethod
    def backward(ctx, grad: Float[Tensor, "... wk"]) -> Float[Tensor, "... k"]:
        # BEGIN SOLUTION
        start = dist.get_rank() * ctx.k
        return grad[..., start : start + ctx.k].contiguous()
        # END SOLUTION


def copy_to_parallel_region(x: Tensor) -> Tensor:
    return CopyToParallelRegion.apply(x)


def reduce_from_parallel_region(x: Tensor) -> Tensor:
    return ReduceFromParallelRegion.apply(x)


def gather_from_parallel_region(x: Tensor) -> Tensor:
    return GatherFromParallelRegion.apply(x)


# -- parallel linear layers --------------------------------------------------------------------


class ColumnParallelLinear(nn.Module):
    """Y = X A^T + b with A (out, in) split by output features: rank r holds rows A_r, b_r.

    `__init__` takes the full weight and bias (the same on every rank) and keeps this rank's
    block of `my_range(out_features)` as `self.weight` (out/W, in) and `self.bias` (out/W,) (or
    None). `forward` sends the replicated input through f and returns this rank's output
    features (..., out/W); with `gather_output=True` it all-gathers them into (..., out).
    """

    def __init__(
        self,
        weight: Float[Tensor, "out in"],
        bias: Float[Tensor, " out"] | None = None,
        gather_output: bool = False,
    ):
        super().__init__()
        self.gather_output = gather_output
        # BEGIN SOLUTION
        start, end = my_range(weight.shape[0])
        self.weight = nn.Parameter(weight[start:end].detach().clone())
        self.bias = None if bias is None else nn.Parameter(bias[start:end].detach().clone())
        # END SOLUTION

    def forward(self, x: Float[Tensor, "... in"]) -> Float[Tensor, "... out_local"]:
        # BEGIN SOLUTION
        y = F.linear(copy_to_parallel_region(x), self.weight, self.bias)  # (..., out/W)
        return gather_from_parallel_region(y) if self.gather_output else y
        # END SOLUTION


class RowParallelLinear(nn.Module):
    """Y = X B^T + b with B (out, in) split by input features: rank r holds columns B_r.

    The input arrives already split (the output of a column-parallel layer): rank r has
    X_r (..., in/W). `self.weight` is B[:, my_range(in)] (out, in/W); `self.bias` is the whole
    bias (out,), replicated. Each rank computes the partial product X_r B_r^T, g sums the
    partials, and the bias is added once, after the sum.
    """

    def __init__(self, weight: Float[Tensor, "out in"], bias: Float[Tensor, " out"] | None = None):
        super().__init__()
        # BEGIN SOLUTION
        start, end = my_range(weight.shape[1])
        self.weight = nn.Parameter(weight[:, start:end].detach().clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        # END SOLUTION

    def forward(self, x: Float[Tensor, "... in_local"]) -> Float[Tensor, "... out"]:
        # BEGIN SOLUTION
        y = reduce_from_parallel_region(F.linear(x, self.weight))  # (..., out), summed
        return y if self.bias is None else y + self.bias
        # END SOLUTION


# -- embedding ---------------------------------------------------------------------------------


class VocabParallelEmbedding(nn.Module):
    """An embedding table (V, d) split by vocabulary rows: rank r holds rows my_range(V).

    A token id outside this rank's rows looks up nothing here: its output row is zero. The
    rank that holds the id fills it in, so an all-reduce (g) of the partial lookups gives every
    rank the full (..., d) embeddings.
    """

    def __init__(self, weight: Float[Tensor, "vocab d"]):
        super().__init__()
        # BEGIN SOLUTION
        self.vocab_start, self.vocab_end = my_range(weight.shape[0])
        self.weight = nn.Parameter(weight[self.vocab_start : self.vocab_end].detach().clone())
        # END SOLUTION

    def forward(self, ids: Int[Tensor, "*batch"]) -> Float[Tensor, "*batch d"]:
        # BEGIN SOLUTION
        outside = (ids < self.vocab_start) | (ids >= self.vocab_end)
        local_ids = (ids - self.vocab_start).masked_fill(outside, 0)
        partial = F.embedding(local_ids, self.weight)  # (*batch, d)
        partial = partial.masked_fill(outside.unsqueeze(-1), 0.0)
        return reduce_from_parallel_region(partial)
        # END SOLUTION


# -- attention and MLP -------------------------------------------------------------------------


def regroup_qkv(
    weight: Float[Tensor, "three_d d"],
    bias: Float[Tensor, " three_d"] | None,
    world_size: int,
) -> tuple[Float[Tensor, "three_d d"], Float[Tensor, " three_d"] | None]:
    """Reorder the rows of a fused q/k/v projection so that a contiguous split gives each rank
    its own heads' queries, keys and values.

    GPT-2's fused weight (3d, d) (in nn.Linear layout) stacks all query rows, then all key rows,
    then all value rows: [Q; K; V], each (d, d) with heads in order. Rank r must compute the q,
    k and v of its heads, the rows [r d/W, (r + 1) d/W) of each of Q, K and V. Return the rows
    reordered rank-major, [Q_0; K_0; V_0; Q_1; K_1; V_1; ...], and the bias the same way, so that
    `ColumnParallelLinear` on the result hands rank r exactly [Q_r; K_r; V_r].
    """
    # BEGIN SOLUTION
    d = weight.shape[0] // 3

    def regroup(t: Tensor) -> Tensor:
        per_rank = t.reshape(3, world_size, d // world_size, *t.shape[1:])  # (3, W, d/W, ...)
        return per_rank.transpose(0, 1).reshape(t.shape)  # (W, 3, d/W, ...) -> (3d, ...)

    return regroup(weight), None if bias is None else regroup(bias)
    # END SOLUTION


class ParallelAttention(nn.Module):
    """Causal multi-head self-attention with the heads split over the ranks.

    Rank r computes the heads [r H/W, (r + 1) H/W): `self.c_attn` is a ColumnParallelLinear of
    the regrouped fused q/k/v weight (each rank gets its heads' 3 d/W rows), attention runs on
    the local heads only (no communication: heads are independent), and `self.c_proj` is a
    RowParallelLinear over the local heads' outputs. Weights come in nn.Linear layout:
    c_attn_weight (3d, d) as [Q; K; V], c_proj_weight (d, d). No padding mask, no KV cache, no
    dropout.
    """

    def __init__(
        self,
        c_attn_weight: Float[Tensor, "three_d d"],
        c_attn_bias: Float[Tensor, " three_d"] | None,
        c_proj_weight: Float[Tensor, "d d"],
        c_proj_bias: Float[Tensor, " d"] | None,
        n_head: int,
    ):
        super().__init__()
        # BEGIN SOLUTION
        world_size = dist.get_world_size()
        if n_head % world_size:
            raise ValueError(f"{n_head} heads cannot be split over {world_size} ranks")
        d = c_proj_weight.shape[0]
        self.n_head_local, self.head_dim = n_head // world_size, d // n_head
        qkv_weight, qkv_bias = regroup_qkv(c_attn_weight, c_attn_bias, world_size)
        self.c_attn = ColumnParallelLinear(qkv_weight, qkv_bias)
        self.c_proj = RowParallelLinear(c_proj_weight, c_proj_bias)
        # END SOLUTION

    def forward(self, x: Float[Tensor, "batch seq d"]) -> Float[Tensor, "batch seq d"]:
        # BEGIN SOLUTION
        B, T, _ = x.shape
        nh, hs = self.n_head_local, self.head_dim
        q, k, v = self.c_attn(x).split(nh * hs, dim=-1)  # 3 x (B, T, nh hs)
        q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, T)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        z = scores.softmax(dim=-1) @ v  # (B, nh, T, hs)
        z = z.transpose(1, 2).reshape(B, T, nh * hs)  # (B, T, nh hs): this rank's heads
        return self.c_proj(z)
        # END SOLUTION


class ParallelMLP(nn.Module):
    """Megatron's MLP: Y = act(X A^T + a) B^T + b with A column-parallel and B row-parallel.

    The activation is elementwise, so each rank applies it to its own hidden features and no
    communication is needed between the two layers: one all-reduce in forward (g, in
    `self.c_proj`) and one in backward (f, in `self.c_fc`). Weights in nn.Linear layout:
    c_fc_weight (hidden, d), c_proj_weight (d, hidden).
    """

    def __init__(
        self,
        c_fc_weight: Float[Tensor, "hidden d"],
        c_fc_bias: Float[Tensor, " hidden"] | None,
        c_proj_weight: Float[Tensor, "d hidden"],
        c_proj_bias: Float[Tensor, " d"] | None,
        act: Callable[[Tensor], Tensor] = F.gelu,
    ):
        super().__init__()
        self.act = act
        # BEGIN SOLUTION
        self.c_fc = ColumnParallelLinear(c_fc_weight, c_fc_bias)
        self.c_proj = RowParallelLinear(c_proj_weight, c_proj_bias)
        # END SOLUTION

    def forward(self, x: Float[Tensor, "... d"]) -> Float[Tensor, "... d"]:
        # BEGIN SOLUTION
        return self.c_proj(self.act(self.c_fc(x)))  # hidden: (..., hidden/W) on each rank
        # END SOLUTION


# -- cross-entropy over a split vocabulary ---------------------------------------------------


class VocabParallelCrossEntropy(torch.autograd.Function):
    """Per-token cross-entropy of logits split by vocabulary, without gathering them.

    Rank r holds logits z[..., my_range(V)] (..., V/W). With the global max m (an all-reduce
    with MAX), the loss is  log(sum_v exp(z_v - m)) - (z_t - m)  for target t: the sum over v is
    a local sum then an all-reduce, and z_t lives on the one rank that holds t (the others add
    zero), so an all-reduce gives it to everyone. Three all-reduces of (...)-shaped tensors, none
    of size V. Backward needs no communication: dL/dz_v = softmax(z)_v - [v == t], and each
    rank computes its own slice of that.
    """

    @staticmethod
    def forward(
        ctx, logits: Float[Tensor, "... v_local"], target: Int[Tensor, "..."]
    ) -> Float[Tensor, "..."]:
        # BEGIN SOLUTION
        v_local = logits.shape[-1]
        start = dist.get_rank() * v_local
        logits_max = logits.detach().amax(dim=-1)  # (...)
        dist.all_reduce(logits_max, op=dist.ReduceOp.MAX)
        z = logits - logits_max.unsqueeze(-1)  # (..., V/W)
        outside = (target < start) | (target >= start + v_local)
        local_target = (target - start).masked_fill(outside, 0)
        z_target = z.gather(-1, local_target.unsqueeze(-1)).squeeze(-1)  # (...)
        z_target = z_target.masked_fill(outside, 0.0).contiguous()
        dist.all_reduce(z_target)
        exp = z.exp()
        sum_exp = exp.sum(dim=-1)  # (...)
        dist.all_reduce(sum_exp)
        ctx.save_for_backward(exp / sum_exp.unsqueeze(-1), local_target, outside)
        return sum_exp.log() - z_target
        # END SOLUTION

    @staticmethod
    def backward(ctx, grad: Float[Tensor, "..."]) -> tuple[Float[Tensor, "... v_local"], None]:
        # BEGIN SOLUTION
        softmax, local_target, outside = ctx.saved_tensors
        grad_logits = softmax.clone()  # (..., V/W)
        hit = (~outside).to(softmax.dtype).unsqueeze(-1)
        grad_logits.scatter_add_(-1, local_target.unsqueeze(-1), -hit)
        return grad_logits * grad.unsqueeze(-1), None
        # END SOLUTION


def vocab_parallel_cross_entropy(
    logits: Float[Tensor, "... v_local"], target: Int[Tensor, "..."]
) -> Float[Tensor, "..."]:
    """The cross-entropy of each token (not reduced), on every rank."""
    return VocabParallelCrossEntropy.apply(logits, target)


# -- GPT-2 -------------------------------------------------------------------------------------


class ParallelGPT2Attention(ParallelAttention):
    """ParallelAttention as transformers' GPT2Block calls it: the block passes the cache and
    masks as extra arguments (ignored here: causal attention only) and unpacks a pair."""

    def forward(self, hidden_states: Tensor, *args, **kwargs) -> tuple[Tensor, None]:
        return super().forward(hidden_states), None


def shard_gpt2(model: nn.Module) -> nn.Module:
    """Turn transformers' GPT2LMHeadModel into this rank's shard, in place; returns the model.

    Replace `transformer.wte` by a VocabParallelEmbedding, each block's `attn` by a
    ParallelGPT2Attention and `mlp` by a ParallelMLP (keeping the block's activation
    `mlp.act`), and `lm_head` by a ColumnParallelLinear whose weight IS the embedding's shard
    (GPT-2 ties them): the model then returns this rank's logits (batch, seq, V/W). Position
    embeddings and layer norms stay replicated. transformers' Conv1D stores its weight as
    (in, out): transpose it to nn.Linear's (out, in).
    """
    # BEGIN SOLUTION
    gpt = model.transformer
    for block in gpt.h:
        attn, mlp = block.attn, block.mlp
        block.attn = ParallelGPT2Attention(
            attn.c_attn.weight.T, attn.c_attn.bias, attn.c_proj.weight.T, attn.c_proj.bias,
            n_head=attn.num_heads,
        )  # fmt: skip
        block.mlp = ParallelMLP(
            mlp.c_fc.weight.T, mlp.c_fc.bias, mlp.c_proj.weight.T, mlp.c_proj.bias, act=mlp.act
        )
    full_wte = gpt.wte.weight
    gpt.wte = VocabParallelEmbedding(full_wte)
    model.lm_head = ColumnParallelLinear(full_wte, None)
    model.lm_head.weight = gpt.wte.weight  # tied: one parameter, two uses
    return model
    # END SOLUTION
