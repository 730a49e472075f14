"""Graders for day w2d4_gpt2_interp: exact identities on tiny random models, planted heads on a
hand-built model, and the induction circuit of the shipped attention-only model.

The trained model is mlab/w2d4_gpt2_interp_assets/attn_only_2l.pt (made by train_attn_only.py
beside it). Run one exercise with `pytest tests/test_w2d4_gpt2_interp.py -k induction_score`.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from checks import assert_close
from mlab import w2d4_gpt2_interp as m
from w2d4_gpt2_interp_helpers import (
    PLANTED,
    hand_built,
    hook_counts,
    hooks_left,
    randomized,
    tiny_gpt2,
)

points = pytest.mark.points
T = 20  # repeated-token tests: [BOS, r_1 .. r_20, r_1 .. r_20]


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: the tensors are tiny and the machine is shared. Restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained() -> m.AttnOnlyTransformer:
    return m.load_attn_only()


@pytest.fixture(scope="module")
def rep_tokens() -> torch.Tensor:
    """(50, 41): 50 sequences [BOS, r, r] with 20 random tokens r from the model's vocabulary."""
    return m.repeated_tokens(50, T, 64, torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def rep_cache(trained, rep_tokens) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The trained model's logits and full cache on `rep_tokens`, from the solutions' given model."""
    store: dict[str, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(lambda mod, i, o, n=name: store.__setitem__(n, o.detach()))
        for name, module in trained.named_modules()
        if isinstance(module, m.HookPoint)
    ]
    with torch.no_grad():
        logits = trained(rep_tokens)
    for h in handles:
        h.remove()
    return logits, store


def assert_no_hooks(model, after: str, before: dict[str, int] | None = None) -> None:
    left = hooks_left(model, before)
    assert not left, f"after {after}, hooks are still attached ({', '.join(left)}): remove them"


def hook_names(model) -> set[str]:
    return {name for name, module in model.named_modules() if isinstance(module, m.HookPoint)}


# -- hooks and the cache -------------------------------------------------------------------------


@points(2)
def test_run_with_cache(trained, rep_tokens):
    tokens = rep_tokens[:4]
    logits, cache = m.run_with_cache(trained, tokens)
    with torch.no_grad():
        expected_logits = trained(tokens)
    assert_close(logits, expected_logits, what="run_with_cache logits on 4 repeated sequences")
    assert isinstance(cache, dict) and set(cache) == hook_names(trained), (
        f"run_with_cache: cache keys {sorted(cache)[:5] if isinstance(cache, dict) else type(cache)}..., "
        f"expected every HookPoint name of the model ({len(hook_names(trained))} of them)"
    )
    for name, value in cache.items():
        assert not value.requires_grad, f"cache[{name!r}] still requires grad: detach it"
    assert_close(
        cache["hook_embed"], trained.W_E[tokens].detach(), what="cache['hook_embed'] vs W_E[tokens]"
    )
    assert_close(
        cache["blocks.1.hook_resid_pre"],
        cache["blocks.0.hook_resid_post"],
        what="cache: resid_pre of block 1 vs resid_post of block 0",
    )
    pattern = cache["blocks.0.attn.hook_pattern"]
    assert_close(
        pattern.sum(-1),
        torch.ones(4, trained.cfg.n_heads, 41),
        what="cache: rows of layer 0's pattern sum",
    )
    assert_no_hooks(trained, "run_with_cache")

    _, some = m.run_with_cache(trained, tokens, ["blocks.1.attn.hook_z", "ln_final.hook_scale"])
    assert set(some) == {"blocks.1.attn.hook_z", "ln_final.hook_scale"}, (
        f"run_with_cache(..., names=[z of layer 1, ln_final scale]) cached {sorted(some)}: "
        "keep only the names asked for"
    )
    assert_close(some["blocks.1.attn.hook_z"], cache["blocks.1.attn.hook_z"], what="cached z, L1")


@points(1)
def test_run_with_cache_removes_hooks_on_error(trained):
    too_long = torch.zeros(1, trained.cfg.n_ctx + 5, dtype=torch.long)  # past W_pos: fails
    try:
        m.run_with_cache(trained, too_long)
    except NotImplementedError:
        raise
    except (RuntimeError, IndexError):
        pass
    else:
        pytest.fail(
            f"run_with_cache on {trained.cfg.n_ctx + 5} tokens (n_ctx {trained.cfg.n_ctx}) should "
            "raise the model's error",
            pytrace=False,
        )
    assert_no_hooks(trained, "a run_with_cache whose forward pass raised")


# -- GPT-2 and the logit lens ---------------------------------------------------------------------


@points(2)
def test_gpt2_residual_stream():
    model = tiny_gpt2()
    ids = torch.randint(0, 100, (2, 9))
    before = hook_counts(model)
    resid = m.gpt2_residual_stream(model, ids)
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
    hidden = out.hidden_states  # embeddings, then each block's output; the last after ln_f
    n = model.config.n_layer
    assert isinstance(resid, torch.Tensor) and resid.shape == (n + 1, 2, 9, 32), (
        f"gpt2_residual_stream: got {getattr(resid, 'shape', type(resid))}, expected "
        f"(n_layer + 1, b, s, d) = {(n + 1, 2, 9, 32)}"
    )
    for layer in range(n):
        assert_close(
            resid[layer],
            hidden[layer],
            what=f"gpt2_residual_stream[{layer}] (input of block {layer}) vs hidden_states[{layer}]",
        )
    with torch.no_grad():
        normed = model.transformer.ln_f(resid[n])
    assert_close(
        normed,
        hidden[n],
        what=f"ln_f(gpt2_residual_stream[{n}]) vs the final hidden state: entry n_layer is ln_f's input",
    )
    assert_no_hooks(model, "gpt2_residual_stream", before)


@points(2)
def test_logit_lens():
    model = tiny_gpt2()
    ids = torch.randint(0, 100, (2, 9))
    before = hook_counts(model)
    lens = m.logit_lens(model, ids)
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
    n = model.config.n_layer
    assert isinstance(lens, torch.Tensor) and lens.shape == (n + 1, 2, 9, 100), (
        f"logit_lens: got {getattr(lens, 'shape', type(lens))}, expected {(n + 1, 2, 9, 100)}"
    )
    assert_close(lens[n], out.logits, what="logit_lens at the last layer vs the model's logits")
    with torch.no_grad():
        for layer in range(n):
            expected = model.lm_head(model.transformer.ln_f(out.hidden_states[layer]))
            assert_close(
                lens[layer],
                expected,
                what=f"logit_lens[{layer}]: lm_head(ln_f(.)) of the input of block {layer}",
            )
    assert_no_hooks(model, "logit_lens", before)


# -- direct logit attribution ---------------------------------------------------------------------


def full_cache(model, tokens):
    store: dict[str, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(lambda mod, i, o, n=name: store.__setitem__(n, o.detach()))
        for name, module in model.named_modules()
        if isinstance(module, m.HookPoint)
    ]
    with torch.no_grad():
        logits = model(tokens)
    for h in handles:
        h.remove()
    return logits, store


@points(3)
@pytest.mark.parametrize("which", ["trained", "random biases"])
def test_direct_logit_attribution_sums_to_logits(trained, rep_tokens, which):
    model = trained if which == "trained" else randomized(trained)
    tokens = rep_tokens[:3]
    logits, cache = full_cache(model, tokens)
    dla = m.direct_logit_attribution(model, cache)
    labels = m.component_labels(model.cfg)
    expected_shape = (len(labels), *logits.shape)
    assert isinstance(dla, torch.Tensor) and dla.shape == expected_shape, (
        f"direct_logit_attribution: got {getattr(dla, 'shape', type(dla))}, expected "
        f"(component, b, s, v) = {expected_shape}, components {labels}"
    )
    assert_close(
        dla.sum(0),
        logits,
        atol=1e-4,
        rtol=1e-4,
        what=f"sum of direct_logit_attribution ({which} model: ln_final w, b and b_U matter) vs logits",
    )
    assert_close(
        dla[-1],
        dla[-1, :1, :1].expand_as(dla[-1]),
        what="direct_logit_attribution['bias'] (b_ln W_U + b_U) should not depend on the token",
    )


@points(2)
def test_direct_logit_attribution_components(trained, rep_tokens, snapshot):
    model = randomized(trained)
    tokens = rep_tokens[:2]
    logits, cache = full_cache(model, tokens)
    dla = m.direct_logit_attribution(model, cache)
    assert isinstance(dla, torch.Tensor) and dla.dim() == 4, "direct_logit_attribution: 4-d tensor"
    nxt = tokens[:, 1:]  # the logit of the true next token, per component
    index = nxt[None, :, :, None].expand(dla.shape[0], -1, -1, 1)
    snapshot.check("next_token_logit", dla[:, :, :-1].gather(-1, index)[..., 0], atol=1e-4)


# -- loss on repeated tokens ----------------------------------------------------------------------


@points(2)
def test_per_token_loss():
    logits = torch.randn(3, 7, 11) * 3
    tokens = torch.randint(0, 11, (3, 7))
    got = m.per_token_loss(logits, tokens)
    expected = F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
    assert_close(
        got, expected, what="per_token_loss on logits (3, 7, 11): entry i scores tokens[:, i + 1]"
    )


@points(1)
def test_second_half_loss_far_below_first(trained, rep_tokens, rep_cache):
    loss = m.per_token_loss(rep_cache[0], rep_tokens)  # (50, 40)
    first, second = loss[:, :T].mean().item(), loss[:, T + 1 :].mean().item()
    assert first > 3.5 and second < 0.5, (
        f"trained model on [BOS, r, r] (T = {T}): mean loss {first:.3f} on the first copy "
        f"(expected > 3.5, chance is ln 63 = 4.14) and {second:.3f} on the second (expected < 0.5)"
    )


# -- head detectors -------------------------------------------------------------------------------


def one_hot_pattern(s: int, key_of_query) -> torch.Tensor:
    """(2, 3, s, s): head 0 attends from each query i to key_of_query(i), heads 1, 2 to key 0."""
    p = torch.zeros(2, 3, s, s)
    p[:, 1:, :, 0] = 1.0
    for i in range(s):
        p[:, 0, i, key_of_query(i)] = 1.0
    return p


def random_pattern(s: int = 9) -> torch.Tensor:
    scores = torch.randn(2, 3, s, s).masked_fill(~torch.ones(s, s, dtype=torch.bool).tril(), -1e9)
    return scores.softmax(-1)


@points(1)
def test_previous_token_score(snapshot):
    got = m.previous_token_score(one_hot_pattern(9, lambda i: max(i - 1, 0)))
    assert_close(
        got,
        torch.tensor([1.0, 1 / 8, 1 / 8]),
        what="previous_token_score (s = 9) of a head attending i -> i - 1 (head 0; query 0 does not "
        "count) and two heads on key 0 (only query 1's attention to key 0 counts)",
    )
    snapshot.check("random", m.previous_token_score(random_pattern()))


@points(1)
def test_first_token_score(snapshot):
    got = m.first_token_score(one_hot_pattern(9, lambda i: i))
    assert_close(
        got,
        torch.tensor([1 / 9, 1.0, 1.0]),
        what="first_token_score of a current-token head (head 0) and two heads on key 0 (s = 9)",
    )
    snapshot.check("random", m.first_token_score(random_pattern()))


@points(1)
def test_current_token_score(snapshot):
    got = m.current_token_score(one_hot_pattern(9, lambda i: i))
    assert_close(
        got,
        torch.tensor([1.0, 1 / 9, 1 / 9]),
        what="current_token_score of a current-token head (head 0) and two heads on key 0 (s = 9)",
    )
    snapshot.check("random", m.current_token_score(random_pattern()))


@points(2)
def test_detect_heads_finds_planted_heads():
    model = hand_built()
    tokens = torch.randint(0, 8, (2, 16))
    scorers = {
        "previous": m.previous_token_score,
        "first": m.first_token_score,
        "current": m.current_token_score,
    }
    for kind, score in scorers.items():
        found = m.detect_heads(model, tokens, score, threshold=0.5)
        assert list(found) == PLANTED[kind], (
            f"detect_heads with {score.__name__} on the hand-built model: found {found}, "
            f"planted {PLANTED[kind]} (as (layer, head))"
        )
    assert_no_hooks(model, "detect_heads")


@points(2)
def test_induction_score(snapshot):
    t = 6
    s = 2 * t + 1
    induction = one_hot_pattern(s, lambda i: i - t + 1 if i > t else 0)
    got = m.induction_score(induction, t)
    assert_close(
        got,
        torch.tensor([1.0, 0.0, 0.0]),
        what=f"induction_score (T = {t}) of a head attending i -> i - T + 1 on the second copy and to "
        "BOS before it (head 0), and two heads on BOS",
    )
    duplicate = one_hot_pattern(s, lambda i: i - t if i > t else 0)
    got = m.induction_score(duplicate, t)
    assert_close(
        got,
        torch.tensor([0.0, 0.0, 0.0]),
        what=f"induction_score (T = {t}) of a duplicate-token head (i -> i - T, the earlier copy of "
        "the same token, not the one after it)",
    )
    snapshot.check("random", m.induction_score(random_pattern(s), t))


@points(2)
def test_trained_model_has_induction_heads(trained, rep_tokens, rep_cache):
    _, cache = rep_cache
    scores = [m.induction_score(cache[f"blocks.{i}.attn.hook_pattern"], T) for i in range(2)]
    layer0, layer1 = scores[0].max().item(), scores[1].max().item()
    assert layer1 > 0.5, f"best induction score in layer 1: {layer1:.3f}, expected > 0.5"
    assert layer0 < 0.15, f"best induction score in layer 0: {layer0:.3f}, expected < 0.15"
    prev = m.previous_token_score(cache["blocks.0.attn.hook_pattern"]).max().item()
    assert prev > 0.4, f"best previous-token score in layer 0: {prev:.3f}, expected > 0.4"


# -- ablation -------------------------------------------------------------------------------------


@points(2)
def test_zero_ablation_equals_removing_the_head(trained, rep_tokens):
    model = randomized(trained)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tokens = rep_tokens[:4]
    for layer, head in [(0, 1), (1, 1)]:
        got = m.ablate_head(model, tokens, layer, head, "zero")
        no_head = copy.deepcopy(model)
        with torch.no_grad():
            no_head.blocks[layer].attn.W_O[head] = 0.0
            expected = no_head(tokens)
        assert_close(
            got, expected, what=f"ablate_head(layer {layer}, head {head}, 'zero') vs W_O[head] = 0"
        )
    assert_no_hooks(model, "ablate_head")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"ablate_head changed the model's {k}: hook, don't edit"


@points(2)
def test_mean_ablation(trained, rep_tokens, snapshot):
    model = randomized(trained)
    same = rep_tokens[:1].expand(5, -1)  # five copies of one sequence: the mean is the sequence
    got = m.ablate_head(model, same, 1, 0, "mean")
    with torch.no_grad():
        clean = model(same)
    assert_close(
        got, clean, what="ablate_head(..., 'mean') on 5 identical sequences (nothing to average)"
    )
    tokens = rep_tokens[:6]
    got = m.ablate_head(model, tokens, 0, 1, "mean")
    snapshot.check("logits", got[:, -4:], atol=1e-4)
    assert_no_hooks(model, "ablate_head(..., 'mean')")


@points(1)
def test_ablating_the_induction_circuit_costs_loss(trained, rep_tokens, rep_cache):
    logits, cache = rep_cache
    clean = m.per_token_loss(logits, rep_tokens)[:, T + 1 :].mean().item()
    prev = m.previous_token_score(cache["blocks.0.attn.hook_pattern"])
    induction = m.induction_score(cache["blocks.1.attn.hook_pattern"], T)
    cases = [
        (0, int(prev.argmax()), 1.0, "previous-token"),
        (1, int(induction.argmax()), 0.2, "induction"),
    ]
    for layer, head, bar, kind in cases:
        ablated = m.ablate_head(trained, rep_tokens, layer, head, "mean")
        loss = m.per_token_loss(ablated, rep_tokens)[:, T + 1 :].mean().item()
        assert loss > clean + bar, (
            f"mean-ablating the best {kind} head L{layer}H{head}: second-copy loss {loss:.3f}, "
            f"clean {clean:.3f}; expected at least {bar} more"
        )


# -- circuits -------------------------------------------------------------------------------------


def factors(m_: int, r: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(m_, r, generator=gen), torch.randn(r, n, generator=gen)


@points(2)
def test_factored_matrix_matmul():
    A, B = factors(7, 3, 5)
    M = m.FactoredMatrix(A, B)
    C = torch.randn(5, 4)
    D = torch.randn(6, 7)
    right = M @ C
    assert isinstance(right, m.FactoredMatrix), "FactoredMatrix @ Tensor should stay factored"
    assert right.A.shape[-1] == 3, f"M @ C: inner dimension {right.A.shape[-1]}, expected r = 3"
    assert_close(right.AB, A @ B @ C, what="(FactoredMatrix (7, 3, 5) @ C (5, 4)).AB")
    left = D @ M
    assert isinstance(left, m.FactoredMatrix), "Tensor @ FactoredMatrix should stay factored"
    assert left.A.shape[-1] == 3, f"D @ M: inner dimension {left.A.shape[-1]}, expected r = 3"
    assert_close(left.AB, D @ A @ B, what="(D (6, 7) @ FactoredMatrix (7, 3, 5)).AB")
    E, G = factors(5, 2, 8, seed=1)
    both = M @ m.FactoredMatrix(E, G)
    assert isinstance(both, m.FactoredMatrix), "FactoredMatrix @ FactoredMatrix: still factored"
    assert_close(both.AB, A @ B @ E @ G, what="(FactoredMatrix @ FactoredMatrix).AB")


@points(1)
def test_factored_matrix_norm():
    A, B = factors(30, 4, 20)
    got = m.FactoredMatrix(A, B).norm()
    assert_close(got, torch.linalg.matrix_norm(A @ B), what="FactoredMatrix(30x4, 4x20).norm()")


@points(2)
def test_factored_matrix_singular_values():
    A, B = factors(30, 4, 20)
    got = m.FactoredMatrix(A, B).singular_values()
    expected = torch.linalg.svdvals(A @ B)[:4]
    assert_close(got, expected, atol=1e-4, what="FactoredMatrix(30x4, 4x20).singular_values()")


def reads_embeddings_only(model: m.AttnOnlyTransformer) -> m.AttnOnlyTransformer:
    """A copy with no positions, no biases and layer 0 writing nothing: every head reads W_E."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        model.W_pos.zero_()
        model.blocks[0].attn.W_O.zero_()
        for block in model.blocks:
            for b in (block.attn.b_Q, block.attn.b_K, block.attn.b_V, block.attn.b_O):
                b.zero_()
    return model


@points(2)
def test_qk_circuit(trained):
    model = reads_embeddings_only(trained)
    v = model.cfg.d_vocab
    query, key = torch.meshgrid(torch.arange(v), torch.arange(v), indexing="ij")
    tokens = torch.stack([key.flatten(), query.flatten()], 1)  # (v * v, 2): row q * v + k is [k, q]
    _, cache = full_cache(model, tokens)
    for layer, head in [(0, 1), (1, 0)]:
        got = m.qk_circuit(trained, layer, head)
        assert isinstance(got, m.FactoredMatrix), "qk_circuit should return a FactoredMatrix"
        scores = cache[f"blocks.{layer}.attn.hook_attn_scores"][:, head, 1, 0]  # (v * v,)
        expected = (scores * model.cfg.d_head**0.5).view(v, v)  # (query token, key token)
        assert_close(
            got.AB,
            expected,
            atol=1e-3,
            what=f"qk_circuit(L{layer}H{head}).AB[query, key] vs the attention score query -> key "
            "(times sqrt(d_head)) with positions and biases removed",
        )


@points(2)
def test_ov_circuit(trained, rep_cache):
    model = reads_embeddings_only(trained)
    v = model.cfg.d_vocab
    tokens = torch.arange(v)[:, None]  # one token: each head attends only to itself
    _, cache = full_cache(model, tokens)
    for layer, head in [(0, 1), (1, 0)]:
        got = m.ov_circuit(trained, layer, head)
        assert isinstance(got, m.FactoredMatrix), "ov_circuit should return a FactoredMatrix"
        z = cache[f"blocks.{layer}.attn.hook_z"][:, 0, head]  # (v, d_head)
        W_O = trained.blocks[layer].attn.W_O[head].detach()  # the copy zeroed layer 0's
        expected = z @ W_O @ trained.W_U.detach()
        assert_close(
            got.AB,
            expected,
            atol=1e-4,
            what=f"ov_circuit(L{layer}H{head}).AB[token] vs the head's output on that token, "
            "read through W_U",
        )
    induction = m.induction_score(rep_cache[1]["blocks.1.attn.hook_pattern"], T)
    head = int(induction.argmax())
    full = m.ov_circuit(trained, 1, head).AB
    copying = (full.argmax(-1) == torch.arange(v)).float().mean().item()
    assert copying > 0.7, (
        f"ov_circuit of the induction head L1H{head}: its row argmax is the token itself for "
        f"{copying:.0%} of tokens; expected > 70% (induction heads copy)"
    )


@points(1)
def test_composition_score(snapshot):
    u, w = torch.randn(6, 1), torch.randn(1, 5)
    v1, v2 = torch.zeros(1, 4), torch.zeros(1, 4)
    v1[0, 0], v2[0, 1] = 2.0, 3.0
    aligned = m.composition_score(u @ v1, v1.T @ w)
    assert_close(aligned, torch.tensor(1.0), what="composition_score of u v^T and v w^T (rank 1)")
    orthogonal = m.composition_score(u @ v1, v2.T @ w)
    assert_close(
        orthogonal, torch.tensor(0.0), what="composition_score when B reads what A never writes"
    )
    A, B = factors(8, 3, 8)
    C = torch.randn(8, 8)
    dense = m.composition_score(A @ B, C)
    factored = m.composition_score(m.FactoredMatrix(A, B), m.FactoredMatrix(C, torch.eye(8)))
    assert_close(
        factored, dense, what="composition_score: FactoredMatrix vs the same dense matrices"
    )
    snapshot.check("random", dense)


@points(2)
def test_composition_scores(trained, rep_cache, snapshot):
    got = {kind: m.composition_scores(trained, kind) for kind in "QKV"}
    for kind, value in got.items():
        n = trained.cfg.n_heads
        assert isinstance(value, torch.Tensor) and value.shape == (n, n), (
            f"composition_scores(kind={kind!r}): got {getattr(value, 'shape', type(value))}, "
            f"expected (heads of layer 0, heads of layer 1) = {(n, n)}"
        )
        snapshot.check(kind, value, atol=1e-4)
    prev = int(m.previous_token_score(rep_cache[1]["blocks.0.attn.hook_pattern"]).argmax())
    strongest = int(got["K"].mean(1).argmax())
    assert strongest == prev, (
        f"K-composition: layer 0's head {strongest} feeds layer 1's keys most, but the "
        f"previous-token head is {prev}: induction heads read it through their keys"
    )
