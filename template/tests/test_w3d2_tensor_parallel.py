"""Graders for day w3d2_tensor_parallel: your tensor-parallel layers in 2 and 4 real processes.

For each world size, one run starts the worker processes in a gloo process group that traces
every collective, runs each exercise on every rank (in float64) and brings the outputs, the
gradients and the list of collectives back here, where they are compared with the unsharded
computation: torch's functional layers, scaled_dot_product_attention, cross_entropy, and
transformers' GPT2LMHeadModel. An error on a rank fails that exercise's tests with the rank's
message and the line of your code that raised it; the other exercises are still graded.

Run one exercise with `pytest tests/test_w3d2_tensor_parallel.py -k row_parallel`. The
multi-process tests are marked `slow` because whichever of them runs first for a world size
starts the processes (and the first of all imports torch and transformers in them): on a busy
2-core machine that one test can take over 20 s; the others then take milliseconds.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import w3d2_tensor_parallel_helpers as h
from checks import assert_close, assert_equal
from mlab import w3d2_tensor_parallel as m

points = pytest.mark.points
WORLD_SIZES = [2, 4]
h.prestart()  # the worker processes' fork server imports torch in the background meanwhile

_RUNS: dict = {}


def section(name: str, world_size: int) -> list[dict]:
    """What each rank's checks of `name` returned; one multi-process run per world size."""
    if world_size not in _RUNS:
        try:
            _RUNS[world_size] = ("ok", h.run("day", world_size, sections=list(h.SECTIONS)))
        except NotImplementedError as exc:
            _RUNS[world_size] = ("todo", str(exc))
        except h.WorkerFailure as exc:
            _RUNS[world_size] = ("failed", str(exc))
    status, value = _RUNS[world_size]
    if status == "todo":
        raise NotImplementedError(value)
    if status == "failed":
        pytest.fail(value, pytrace=False)
    outcomes = [ranks[name] for ranks in value]
    for rank, o in enumerate(outcomes):
        if o.get("error") == "NotImplementedError":
            raise NotImplementedError(f"{o['message']} (raised on rank {rank} of {world_size})")
    for rank, o in enumerate(outcomes):
        if "error" in o:
            where = f" at {o['where']}" if o["where"] else ""
            pytest.fail(
                f"rank {rank} of {world_size} raised {o['error']}{where}: {o['message']}",
                pytrace=False,
            )
    return [o["result"] for o in outcomes]


def expect(condition: bool, message: str) -> None:
    """Fail with `message` alone (no dump of the objects in the condition)."""
    if not condition:
        pytest.fail(message, pytrace=False)


def describe(made: list[tuple[str, int]]) -> str:
    if not made:
        return "none"
    return ", ".join(f"{kind} of {n} elements" for kind, n in made)


def expect_collectives(made: list, expected: list[str], what: str, why: str) -> None:
    kinds = [kind for kind, _ in made]
    expect(
        kinds == expected,
        f"{what} made {len(kinds)} collectives ({describe(made)}); expected "
        f"{' then '.join(expected) if expected else 'none'}: {why}",
    )


def check_params(per_rank: list[dict], reference: dict, what: str) -> None:
    """Each rank's parameters against the full ones, whatever order the shard keeps.

    A parameter with the full shape must be replicated: equal values and equal gradients. A
    parameter 1/W the size along one dimension is a shard: each of its slices along that
    dimension must be one of the full parameter's slices (found by value), the W shards together
    must hold each slice once, and each slice's gradient must equal the full gradient there.
    """
    world_size = len(per_rank)
    for name, (full, full_grad) in reference.items():
        for rank, params in enumerate(per_rank):
            expect(
                name in params,
                f"{what}: rank {rank} has no parameter `{name}` (it has {sorted(params)[:8]}...); "
                "keep the names the docstrings give",
            )
        if per_rank[0][name][0].shape == full.shape:
            for rank, params in enumerate(per_rank):
                value, grad = params[name]
                assert_equal(value, full, what=f"{what}: {name} on rank {rank} (replicated)")
                assert_close(
                    grad, full_grad, what=f"{what}: {name}.grad on rank {rank} (replicated)"
                )
            continue
        shape = tuple(per_rank[0][name][0].shape)
        dims = [
            d
            for d in range(full.dim())
            if len(shape) == full.dim()
            and shape[d] * world_size == full.shape[d]
            and all(shape[e] == full.shape[e] for e in range(full.dim()) if e != d)
        ]
        expect(
            len(dims) == 1,
            f"{what}: {name} on rank 0 has shape {shape}; the full parameter is "
            f"{tuple(full.shape)}: expected it whole (replicated) or 1/{world_size} of it along "
            "one dimension (a shard)",
        )
        dim = dims[0]
        rows = full.movedim(dim, 0).reshape(full.shape[dim], -1)  # (n, rest)
        grad_rows = full_grad.movedim(dim, 0).reshape(full.shape[dim], -1)
        seen: list[int] = []
        for rank, params in enumerate(per_rank):
            value, grad = params[name]
            local = value.movedim(dim, 0).reshape(value.shape[dim], -1)  # (n / W, rest)
            matches = (local[:, None, :] == rows[None, :, :]).all(-1)  # (n / W, n)
            found = matches.any(1)
            expect(
                bool(found.all()),
                f"{what}: {name} on rank {rank} ({shape}): {int((~found).sum())} of its "
                f"{len(found)} slices along dim {dim} are not slices of the full parameter "
                f"{tuple(full.shape)}. A shard keeps some of the full weight's "
                f"{'rows' if dim == 0 else 'columns'} unchanged (nn.Linear layout: out, in).",
            )
            index = matches.float().argmax(1)
            seen += index.tolist()
            expect(
                grad is not None,
                f"{what}: {name} on rank {rank} got no gradient: is it a leaf nn.Parameter "
                "used in forward?",
            )
            assert_close(
                grad.movedim(dim, 0).reshape(len(index), -1),
                grad_rows[index],
                what=f"{what}: {name}.grad on rank {rank}, its slices along dim {dim} vs the "
                "full gradient's",
            )
        expect(
            sorted(seen) == list(range(full.shape[dim])),
            f"{what}: the {world_size} shards of {name} together hold slices {sorted(seen)} "
            f"along dim {dim}; they must hold each of the {full.shape[dim]} exactly once",
        )


def full_params(**named: torch.Tensor) -> dict:
    """(value, grad) by name for reference tensors after backward."""
    return {n.replace("__", "."): (t.detach(), t.grad) for n, t in named.items()}


def leaf(t: torch.Tensor) -> torch.Tensor:
    return t.clone().requires_grad_()


# -- f and g -----------------------------------------------------------------------------------


@points(1)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_copy_to_parallel_region(world_size):
    results = section("copy", world_size)
    x = h.randn(1, 3, 8)
    total = sum(h.randn(100 + r, 3, 8) for r in range(world_size))
    for rank, res in enumerate(results):
        what = f"rank {rank} of {world_size}: copy_to_parallel_region (f)"
        assert_close(res["y"], x, what=f"{what}: forward output vs its input (f is the identity)")
        assert_close(
            res["grad"],
            total,
            what=f"{what}: the input's gradient vs the sum of every rank's output gradient "
            "(backward all-reduces)",
        )
        expect_collectives(res["fwd"], [], f"{what} forward", "f is the identity in forward")
        expect_collectives(
            res["bwd"], ["all_reduce"], f"{what} backward", "one all-reduce of the gradient"
        )


@points(1)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_reduce_from_parallel_region(world_size):
    results = section("reduce", world_size)
    total = sum(h.randn(10 + r, 3, 8) for r in range(world_size))
    for rank, res in enumerate(results):
        what = f"rank {rank} of {world_size}: reduce_from_parallel_region (g)"
        assert_close(
            res["y"], total, what=f"{what}: forward output vs the sum of the ranks' inputs"
        )
        assert_close(
            res["grad"],
            h.randn(100 + rank, 3, 8),
            what=f"{what}: the input's gradient vs this rank's output gradient (g's backward is "
            "the identity)",
        )
        expect(res["unchanged"], f"{what} changed its input in place: all-reduce a copy")
        expect_collectives(res["fwd"], ["all_reduce"], f"{what} forward", "one all-reduce")
        expect_collectives(res["bwd"], [], f"{what} backward", "g is the identity in backward")


@points(1)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_gather_from_parallel_region(world_size):
    results = section("gather", world_size)
    full = torch.cat([h.randn(10 + r, 3, 4) for r in range(world_size)], dim=-1)
    upstream = h.randn(5, 3, 4 * world_size)
    for rank, res in enumerate(results):
        what = f"rank {rank} of {world_size}: gather_from_parallel_region of (3, 4) per rank"
        assert_close(
            res["y"], full, what=f"{what}: output vs the ranks' inputs concatenated on the last dim"
        )
        assert_close(
            res["grad"],
            upstream[..., h.block(4 * world_size, rank, world_size)],
            what=f"{what}: the input's gradient vs this rank's slice of the output gradient",
        )
        expect_collectives(res["fwd"], ["all_gather"], f"{what} forward", "one all-gather")
        expect_collectives(res["bwd"], [], f"{what} backward", "backward only slices")


# -- parallel linear layers --------------------------------------------------------------------


def linear_reference(weight, bias, x, upstream):
    weight, bias, x = leaf(weight), leaf(bias), leaf(x)
    y = F.linear(x, weight, bias)
    (y * upstream).sum().backward()
    return y.detach(), x.grad, full_params(weight=weight, bias=bias)


@points(2)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_column_parallel_linear(world_size):
    results = section("column", world_size)
    y, x_grad, params = linear_reference(*h.column_inputs())
    for rank, res in enumerate(results):
        what = f"rank {rank} of {world_size}: ColumnParallelLinear(12 -> 12), x (2, 5, 8)"
        assert_close(
            res["y"],
            y[..., h.block(12, rank, world_size)],
            what=f"{what}: output vs this rank's block of F.linear's output features",
        )
        assert_close(
            res["grad"],
            x_grad,
            what=f"{what}: x.grad vs the full layer's (every rank's part of dL/dx must be summed: f)",
        )
        expect_collectives(
            res["fwd"], [], f"{what} forward", "each rank computes its columns alone"
        )
        expect_collectives(
            res["bwd"], ["all_reduce"], f"{what} backward", "f all-reduces the input's gradient"
        )
    check_params(
        [r["params"] for r in results], params, f"ColumnParallelLinear, {world_size} ranks"
    )


@points(1)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_column_parallel_linear_gather_output(world_size):
    results = section("column_gather", world_size)
    y, x_grad, params = linear_reference(*h.column_inputs())
    for rank, res in enumerate(results):
        what = f"rank {rank} of {world_size}: ColumnParallelLinear(gather_output=True)"
        assert_close(res["y"], y, what=f"{what}: output vs F.linear")
        assert_close(res["grad"], x_grad, what=f"{what}: x.grad vs the full layer's")
        expect_collectives(
            res["fwd"], ["all_gather"], f"{what} forward", "one all-gather of the outputs"
        )
        expect_collectives(
            res["bwd"], ["all_reduce"], f"{what} backward", "f all-reduces the input's gradient"
        )
    check_params([r["params"] for r in results], params, "ColumnParallelLinear(gather_output=True)")


@points(2)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_row_parallel_linear(world_size):
    results = section("row", world_size)
    y, x_grad, params = linear_reference(*h.row_inputs())
    for rank, res in enumerate(results):
        what = f"rank {rank} of {world_size}: RowParallelLinear(12 -> 8) on x[..., its block]"
        assert_close(
            res["y"],
            y,
            what=f"{what}: output vs F.linear on the whole x (partial sums all-reduced, the bias "
            "added once)",
        )
        assert_close(
            res["grad"],
            x_grad[..., h.block(12, rank, world_size)],
            what=f"{what}: the gradient of this rank's input block",
        )
        expect_collectives(
            res["fwd"], ["all_reduce"], f"{what} forward", "g sums the partial products once"
        )
        expect_collectives(res["bwd"], [], f"{what} backward", "g is the identity in backward")
    check_params([r["params"] for r in results], params, f"RowParallelLinear, {world_size} ranks")


@points(2)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_vocab_parallel_embedding(world_size):
    results = section("embedding", world_size)
    weight, ids = leaf(h.randn(40, h.VOCAB, 5)), h.embedding_ids()
    y = F.embedding(ids, weight)
    (y * h.randn(41, 2, 7, 5)).sum().backward()
    for rank, res in enumerate(results):
        what = (
            f"rank {rank} of {world_size}: VocabParallelEmbedding(12 x 5), ids (2, 7) covering "
            f"the whole vocabulary ({12 // world_size} rows per rank)"
        )
        assert_close(
            res["y"],
            y.detach(),
            what=f"{what}: output vs F.embedding (ids outside a rank's rows must give zeros "
            "there before the all-reduce)",
        )
        expect_collectives(res["fwd"], ["all_reduce"], f"{what} forward", "one all-reduce (g)")
        expect_collectives(res["bwd"], [], f"{what} backward", "g is the identity in backward")
    check_params(
        [r["params"] for r in results],
        full_params(weight=weight),
        f"VocabParallelEmbedding, {world_size} ranks",
    )


# -- attention and MLP -------------------------------------------------------------------------


@points(1)
@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_regroup_qkv(world_size, snapshot):
    weight, bias = h.randn(90, 3 * 8, 3), h.randn(91, 3 * 8)
    new_weight, new_bias = m.regroup_qkv(weight, bias, world_size)
    what = f"regroup_qkv(weight (24, 3), bias (24,), world_size={world_size})"
    assert_equal(
        new_weight.sort(dim=0).values,
        weight.sort(dim=0).values,
        what=f"{what}: the rows, sorted (a regrouping reorders rows, it changes none)",
    )
    if world_size == 1:
        assert_equal(new_weight, weight, what=f"{what}: one rank holds every head, in order")
        assert_equal(new_bias, bias, what=f"{what}: bias, one rank")
    snapshot.check(f"weight_w{world_size}", new_weight, atol=0, rtol=0)
    snapshot.check(f"bias_w{world_size}", new_bias, atol=0, rtol=0)
    expect(m.regroup_qkv(weight, None, world_size)[1] is None, f"{what}: bias=None must give None")


def attention_reference():
    w_qkv, b_qkv, w_o, b_o = (leaf(t) for t in h.attention_weights())
    x = leaf(h.randn(54, h.BATCH, h.SEQ, h.D_MODEL))
    y = h.reference_attention(x, w_qkv, b_qkv, w_o, b_o)
    (y * h.randn(55, h.BATCH, h.SEQ, h.D_MODEL)).sum().backward()
    params = full_params(
        c_attn__weight=w_qkv, c_attn__bias=b_qkv, c_proj__weight=w_o, c_proj__bias=b_o
    )
    return y.detach(), x.grad, params


@points(3)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_parallel_attention(world_size):
    results = section("attention", world_size)
    y, x_grad, params = attention_reference()
    for rank, res in enumerate(results):
        what = (
            f"rank {rank} of {world_size}: ParallelAttention(d=16, 4 heads, {4 // world_size} "
            "per rank), x (2, 5, 16)"
        )
        assert_close(
            res["y"],
            y,
            what=f"{what}: output vs causal attention with F.scaled_dot_product_attention (each "
            "rank needs ITS heads' q, k and v: did you regroup the fused qkv weight?)",
        )
        assert_close(res["grad"], x_grad, what=f"{what}: x.grad vs the unsharded attention's")
    check_params([r["params"] for r in results], params, f"ParallelAttention, {world_size} ranks")


@points(1)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_parallel_attention_collectives(world_size):
    results = section("attention", world_size)
    for rank, res in enumerate(results):
        what = f"rank {rank} of {world_size}: ParallelAttention"
        expect_collectives(
            res["fwd"], ["all_reduce"], f"{what} forward", "one all-reduce, in c_proj (g)"
        )
        expect_collectives(
            res["bwd"], ["all_reduce"], f"{what} backward", "one all-reduce, in c_attn (f)"
        )


def mlp_reference():
    w1, b1, w2, b2 = (leaf(t) for t in h.mlp_weights())
    x = leaf(h.randn(64, h.BATCH, h.SEQ, h.D_MODEL))
    y = F.linear(h.gelu_tanh(F.linear(x, w1, b1)), w2, b2)
    (y * h.randn(65, h.BATCH, h.SEQ, h.D_MODEL)).sum().backward()
    params = full_params(c_fc__weight=w1, c_fc__bias=b1, c_proj__weight=w2, c_proj__bias=b2)
    return y.detach(), x.grad, params


@points(2)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_parallel_mlp(world_size):
    results = section("mlp", world_size)
    y, x_grad, params = mlp_reference()
    for rank, res in enumerate(results):
        what = f"rank {rank} of {world_size}: ParallelMLP(16 -> 64 -> 16, gelu), x (2, 5, 16)"
        assert_close(res["y"], y, what=f"{what}: output vs the unsharded MLP")
        assert_close(res["grad"], x_grad, what=f"{what}: x.grad vs the unsharded MLP's")
    check_params([r["params"] for r in results], params, f"ParallelMLP, {world_size} ranks")


@points(1)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_parallel_mlp_collectives(world_size):
    results = section("mlp", world_size)
    for rank, res in enumerate(results):
        what = f"rank {rank} of {world_size}: ParallelMLP"
        expect_collectives(
            res["fwd"], ["all_reduce"], f"{what} forward", "one all-reduce, in c_proj (g)"
        )
        expect_collectives(
            res["bwd"], ["all_reduce"], f"{what} backward", "one all-reduce, in c_fc (f)"
        )


# -- cross-entropy -----------------------------------------------------------------------------


@points(2)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_vocab_parallel_cross_entropy(world_size):
    results = section("cross_entropy", world_size)
    logits, targets = h.ce_logits()
    logits = leaf(logits)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    loss = loss.view(h.BATCH, h.SEQ)
    (loss * h.randn(71, h.BATCH, h.SEQ)).sum().backward()
    for rank, res in enumerate(results):
        what = (
            f"rank {rank} of {world_size}: vocab_parallel_cross_entropy, logits (2, 5, "
            f"{h.VOCAB // world_size}) per rank (one row of the batch is offset by +1000)"
        )
        assert_close(
            res["loss"],
            loss.detach(),
            what=f"{what}: per-token loss vs F.cross_entropy(reduction='none') on the full logits",
        )
        assert_close(
            res["grad"],
            logits.grad[..., h.block(h.VOCAB, rank, world_size)],
            what=f"{what}: the gradient of this rank's logits (softmax - one-hot, this rank's "
            "columns)",
        )


@points(1)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_vocab_parallel_cross_entropy_collectives(world_size):
    results = section("cross_entropy", world_size)
    tokens = h.BATCH * h.SEQ
    for rank, res in enumerate(results):
        what = f"rank {rank} of {world_size}: vocab_parallel_cross_entropy"
        fwd = res["fwd"]
        expect(
            0 < len(fwd) <= 3 and all(kind == "all_reduce" and n <= tokens for kind, n in fwd),
            f"{what} forward made {describe(fwd)}; expected at most 3 all-reduces of at most "
            f"{tokens} elements (one number per token: the max, the sum of exponentials, the "
            "target's logit), never the logits themselves",
        )
        expect_collectives(
            res["bwd"], [], f"{what} backward", "each rank computes its slice of softmax - one-hot"
        )


# -- GPT-2 -------------------------------------------------------------------------------------

N_LAYER = h.GPT2_CONFIG["n_layer"]


def gpt2_what(world_size: int) -> str:
    c = h.GPT2_CONFIG
    return (
        f"shard_gpt2(GPT2LMHeadModel(n_layer={c['n_layer']}, n_embd={c['n_embd']}, "
        f"n_head={c['n_head']}, vocab_size={c['vocab_size']})) on {world_size} ranks, ids "
        f"{h.GPT2_SHAPE}"
    )


@points(2)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_shard_gpt2_logits(world_size):
    results = section("gpt2", world_size)
    ref = results[0]["ref_logits"]
    vocab = ref.shape[-1]
    for rank, res in enumerate(results):
        assert_close(
            res["logits"],
            ref[..., h.block(vocab, rank, world_size)],
            what=f"{gpt2_what(world_size)}: rank {rank}'s logits vs its vocabulary block of "
            "transformers' unsharded logits",
        )


@points(3)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_shard_gpt2_gradients(world_size):
    results = section("gpt2", world_size)
    check_params(
        [r["params"] for r in results],
        results[0]["ref_params"],
        f"{gpt2_what(world_size)}, after backward",
    )


@points(1)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_shard_gpt2_parameters(world_size):
    results = section("gpt2", world_size)
    ref = results[0]["ref_params"]
    sharded = sum(v.numel() for n, (v, _) in ref.items() if n.endswith(h.MEGATRON_SHARDED))
    replicated = sum(v.numel() for v, _ in ref.values()) - sharded
    expected = replicated + sharded // world_size
    for rank, res in enumerate(results):
        expect(
            res["tied"],
            f"{gpt2_what(world_size)}: on rank {rank} lm_head.weight is not the embedding's "
            "parameter: tie them (`model.lm_head.weight = model.transformer.wte.weight`)",
        )
        expect(
            res["numel"] == expected,
            f"{gpt2_what(world_size)}: rank {rank} holds {res['numel']} parameters; expected "
            f"{expected} = {sharded} sharded / {world_size} + {replicated} replicated (position "
            "embeddings, layer norms, the row-parallel biases)",
        )


@points(2)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_shard_gpt2_collectives(world_size):
    results = section("gpt2", world_size)
    L = N_LAYER
    for rank, res in enumerate(results):
        what = f"{gpt2_what(world_size)}: rank {rank}"
        expect_collectives(
            res["fwd"],
            ["all_reduce"] * (1 + 2 * L),
            f"{what}: forward",
            f"1 in the embedding, then 2 per block (attention, MLP) x {L} blocks; the logits "
            "stay split",
        )
        expect_collectives(
            res["bwd"],
            ["all_reduce"] * (2 * L + 1),
            f"{what}: backward",
            f"1 for the LM head's input, then 2 per block (MLP, attention) x {L} blocks; the "
            "embedding needs none",
        )


@points(2)
@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.slow  # the first one run for a world size starts its processes
def test_shard_gpt2_vocab_parallel_loss(world_size):
    results = section("gpt2_loss", world_size)
    what = f"{gpt2_what(world_size)}, loss = vocab_parallel_cross_entropy(logits, targets).mean()"
    for rank, res in enumerate(results):
        assert_close(
            res["loss"],
            results[0]["ref_loss"],
            what=f"{what}: rank {rank}'s loss vs F.cross_entropy on transformers' full logits",
        )
    check_params(
        [r["params"] for r in results], results[0]["ref_params"], f"{what}, after backward"
    )
