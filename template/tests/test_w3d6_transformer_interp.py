"""Graders for day w3d6_transformer_interp: patching identities on the shipped brackets
classifier and on small random models, the toy model of superposition trained in the test, and a
sparse autoencoder that must find the toy model's features.

The trained models are mlab/w3d6_transformer_interp_assets/{brackets,toy_model}.pt (made by
train.py beside them). Run one exercise with `pytest tests/test_w3d6_transformer_interp.py -k
path_patch`.
"""

from __future__ import annotations

import math

import pytest
import torch
from checks import assert_close
from mlab import w3d6_transformer_interp as m
from w3d6_transformer_interp_helpers import (
    cache_of,
    diff_of,
    hooks_left,
    interpolate,
    linear_model,
    normalized,
    pairs,
    random_model,
    raw_diff,
)

points = pytest.mark.points


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: the tensors are tiny and the machine is shared. Restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> m.BracketTransformer:
    return m.load_brackets_model()


@pytest.fixture(scope="module")
def runs(model):
    """12 clean / corrupted pairs: tokens, logits and caches, recorded by the grader itself."""
    clean, corrupted = pairs(12)
    clean_logits, clean_cache = cache_of(model, clean)
    corrupted_logits, corrupted_cache = cache_of(model, corrupted)
    return {
        "clean": clean,
        "corrupted": corrupted,
        "clean_logits": clean_logits,
        "corrupted_logits": corrupted_logits,
        "clean_cache": clean_cache,
        "corrupted_cache": corrupted_cache,
        "metric": normalized(clean_logits, corrupted_logits),
    }


def patched_by_grader(model, tokens, name: str, head: int, cache) -> torch.Tensor:
    """The grader's own patch of one head's hook_z (all positions) from `cache`."""

    def hook(module, inputs, output):
        output = output.clone()
        output[:, :, head] = cache[name][:, :, head]
        return output

    handle = dict(model.named_modules())[name].register_forward_hook(hook)
    try:
        with torch.no_grad():
            return model(tokens)
    finally:
        handle.remove()


def assert_no_hooks(model, after: str) -> None:
    left = hooks_left(model)
    assert not left, f"after {after}, hooks are still attached ({', '.join(left)}): remove them"


# -- hooks and metrics ---------------------------------------------------------------------------


@points(2)
def test_run_with_hooks(model, runs):
    tokens = runs["clean"][:4]
    seen: dict[str, torch.Tensor] = {}
    logits = m.run_with_hooks(
        model, tokens, [("blocks.1.attn.hook_z", lambda a: seen.__setitem__("z", a.detach()))]
    )
    assert_close(logits, runs["clean_logits"][:4], what="run_with_hooks with a reading hook")
    assert_close(
        seen.get("z"), runs["clean_cache"]["blocks.1.attn.hook_z"][:4], what="what the hook saw"
    )
    assert_no_hooks(model, "run_with_hooks")

    last = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    zeroed = m.run_with_hooks(model, tokens, [(last, torch.zeros_like)])
    with torch.no_grad():  # LayerNorm of a zero vector is its bias
        expected = (model.ln_final.b @ model.W_U + model.b_U).expand(4, 2)
    assert_close(zeroed, expected, what=f"run_with_hooks replacing {last} by zeros", atol=1e-4)

    two = m.run_with_hooks(
        model, tokens, [("hook_embed", lambda a: a + 1.0), ("hook_embed", lambda a: a * 2.0)]
    )
    one = m.run_with_hooks(model, tokens, [("hook_embed", lambda a: (a + 1.0) * 2.0)])
    assert_close(two, one, what="two hooks on hook_embed (+1, then *2) vs one doing both")
    assert_no_hooks(model, "run_with_hooks with several hooks")

    with torch.enable_grad():
        out = m.run_with_hooks(model, tokens, [])
    assert out.requires_grad, "run_with_hooks under enable_grad: keep gradients (no no_grad)"


@points(1)
def test_run_with_hooks_removes_hooks_on_error(model, runs):
    def broken(act):
        raise ValueError("a hook that fails")

    with pytest.raises(ValueError):
        m.run_with_hooks(
            model,
            runs["clean"][:2],
            [("hook_embed", lambda a: None), ("blocks.0.hook_mlp_out", broken)],
        )
    assert_no_hooks(model, "a run_with_hooks whose hook raised (use try / finally)")


@points(1)
def test_logit_diff_and_normalized_metric():
    gen = torch.Generator().manual_seed(0)
    for batch in (3, 7):
        logits = torch.randn(batch, 2, generator=gen) * 3
        expected = torch.tensor((logits[:, 1] - logits[:, 0]).sum().item() / batch)
        assert_close(m.logit_diff(logits), expected, what=f"logit_diff on (batch {batch}, 2)")
    clean, corrupted = torch.tensor([[0.0, 4.0], [1.0, 3.0]]), torch.tensor([[2.0, -1.0]] * 2)
    c, r = 3.0, -3.0
    for logits, want, what in [(clean, 1.0, "clean"), (corrupted, 0.0, "corrupted")]:
        assert_close(
            m.normalized_metric(logits, c, r),
            torch.tensor(want),
            what=f"normalized_metric on the {what} logits (clean diff 3, corrupted diff -3)",
        )
    half = torch.tensor([[0.0, 0.0]])
    assert_close(
        m.normalized_metric(half, c, r), torch.tensor(0.5), what="normalized_metric halfway"
    )


# -- activation patching -------------------------------------------------------------------------


@points(2)
def test_patch_activation(model, runs, snapshot):
    corrupted, clean_cache = runs["corrupted"], runs["clean_cache"]
    before = {k: v.clone() for k, v in clean_cache.items()}
    for layer in range(model.cfg.n_layers):
        name = f"blocks.{layer}.hook_resid_pre"
        logits = m.patch_activation(model, corrupted, clean_cache, name)
        assert_close(
            logits,
            runs["clean_logits"],
            what=f"patching all of {name} from the clean run (metric 1: the clean logits)",
            atol=1e-4,
        )
    same = m.patch_activation(
        model, runs["clean"], clean_cache, "blocks.1.attn.hook_z", (slice(None), slice(None), 0)
    )
    assert_close(same, runs["clean_logits"], what="patching the clean run into itself", atol=1e-4)
    # position 0 is START in both runs: patching the embedding there changes nothing
    start = m.patch_activation(
        model, corrupted, clean_cache, "blocks.0.hook_resid_pre", (slice(None), 0)
    )
    assert_close(
        start,
        runs["corrupted_logits"],
        what="patching resid_pre of layer 0 at position 0 (START)",
        atol=1e-4,
    )
    for k, v in before.items():
        assert torch.equal(clean_cache[k], v), f"patch_activation wrote into clean_cache[{k!r}]"
    head = m.patch_activation(
        model, corrupted, clean_cache, "blocks.1.attn.hook_z", (slice(None), slice(None), 0)
    )
    snapshot.check("L1H0", head, atol=1e-4)
    assert_no_hooks(model, "patch_activation")


@points(2)
def test_patch_resid_by_position(model, runs, snapshot):
    corrupted, clean_cache = runs["corrupted"], runs["clean_cache"]
    out = m.patch_resid_by_position(model, corrupted, clean_cache, runs["metric"])
    shape = (model.cfg.n_layers, corrupted.shape[1])
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == shape, (
        f"patch_resid_by_position: got {getattr(out, 'shape', type(out))}, expected (layer, pos) = {shape}"
    )
    same = (runs["clean"] == corrupted).all(0)  # positions where every pair has the same token
    assert_close(
        out[0][same],
        torch.zeros(int(same.sum())),
        what=f"layer 0 at the {int(same.sum())} positions where clean and corrupted tokens agree",
        atol=1e-5,
    )
    itself = m.patch_resid_by_position(model, runs["clean"], clean_cache, raw_diff)
    assert_close(
        itself,
        torch.full(shape, diff_of(runs["clean_logits"])),
        what="patching the clean run into itself (raw logit difference)",
        atol=1e-4,
    )
    snapshot.check("resid", out, atol=1e-4)


@points(2)
def test_patch_heads(model, runs, snapshot):
    corrupted, clean_cache = runs["corrupted"], runs["clean_cache"]
    out = m.patch_heads(model, corrupted, clean_cache, runs["metric"])
    shape = (model.cfg.n_layers, model.cfg.n_heads)
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == shape, (
        f"patch_heads: got {getattr(out, 'shape', type(out))}, expected (layer, head) = {shape}"
    )
    itself = m.patch_heads(model, runs["clean"], clean_cache, raw_diff)
    assert_close(
        itself,
        torch.full(shape, diff_of(runs["clean_logits"])),
        what="patch_heads of the clean run into itself (raw logit difference)",
        atol=1e-4,
    )
    snapshot.check("heads", out, atol=1e-4)


@points(3)
def test_path_patch(model, runs, snapshot):
    args = (model, runs["corrupted"], runs["clean_cache"], runs["corrupted_cache"])
    metric = runs["metric"]
    last = model.cfg.n_layers - 1
    for head in range(model.cfg.n_heads):
        direct = m.path_patch(*args, (last, head), None, metric)
        name = f"blocks.{last}.attn.hook_z"
        total = metric(patched_by_grader(model, runs["corrupted"], name, head, runs["clean_cache"]))
        assert_close(
            direct,
            total,
            what=f"path_patch from L{last}H{head} (last layer) to the logits vs patching that head",
            atol=1e-4,
        )
    nothing = m.path_patch(*args, (0, 0), [], metric)
    assert_close(
        nothing, torch.tensor(0.0), what="path_patch to no receivers (the corrupted run)", atol=1e-5
    )
    itself = m.path_patch(
        model, runs["clean"], runs["clean_cache"], runs["clean_cache"], (0, 1), None, raw_diff
    )
    assert_close(
        itself,
        torch.tensor(diff_of(runs["clean_logits"])),
        what="path_patch clean into clean",
        atol=1e-4,
    )
    # attention only, no LayerNorm: with layer 1 frozen, L0H0's path to the logits is its direct
    # logit attribution, (z_clean - z_corr) W_O[0] (W_U[:, 1] - W_U[:, 0]) at position 0
    small = random_model(layer_norm=False, d_mlp=0)
    _, small_clean = cache_of(small, runs["clean"])
    small_corr_logits, small_corr = cache_of(small, runs["corrupted"])
    direct = m.path_patch(small, runs["corrupted"], small_clean, small_corr, (0, 0), None, raw_diff)
    dz = (small_clean["blocks.0.attn.hook_z"] - small_corr["blocks.0.attn.hook_z"])[:, 0, 0]
    with torch.no_grad():
        dla = (dz @ small.blocks[0].attn.W_O[0] @ (small.W_U[:, 1] - small.W_U[:, 0])).mean()
    assert_close(
        direct,
        torch.tensor(diff_of(small_corr_logits)) + dla,
        what="path_patch L0H0 -> logits in an attention-only model without LayerNorm vs its direct "
        "logit attribution (are all other heads' hook_z frozen to the corrupted run?)",
        atol=1e-4,
    )
    receivers = [(last, h, kind) for h in range(model.cfg.n_heads) for kind in "qkv"]
    values = torch.stack(
        [m.path_patch(*args, (0, h), None, metric) for h in range(model.cfg.n_heads)]
        + [m.path_patch(*args, (0, h), receivers, metric) for h in range(model.cfg.n_heads)]
        + [m.path_patch(*args, (0, 0), [(last, 1, "k")], metric)]
    )
    # (L0H0, L0H1) -> logits with L1 frozen, (L0H0, L0H1) -> every q, k, v of L1, L0H0 -> L1H1 keys
    snapshot.check("paths", values, atol=1e-4)
    assert_no_hooks(model, "path_patch")


# -- attribution patching ------------------------------------------------------------------------


@points(2)
def test_activations_and_grads(model, runs):
    tokens = runs["corrupted"][:5]
    names = ["blocks.0.hook_resid_pre", "blocks.1.attn.hook_z", "blocks.0.mlp.hook_post"]
    acts, grads = m.activations_and_grads(model, tokens, raw_diff, names)
    assert set(acts) == set(names) and set(grads) == set(names), (
        f"activations_and_grads: keys {sorted(acts)} / {sorted(grads)}, expected {sorted(names)}"
    )
    _, cache = cache_of(model, tokens)
    for name in names:
        assert_close(acts[name], cache[name], what=f"activation at {name}")
        leaf = cache[name].clone().requires_grad_(True)  # the grader's way: a leaf put in place
        handle = dict(model.named_modules())[name].register_forward_hook(
            lambda mod, i, o, leaf=leaf: leaf
        )
        try:
            (expected,) = torch.autograd.grad(raw_diff(model(tokens)), [leaf])
        finally:
            handle.remove()
        assert_close(grads[name], expected, what=f"d(logit diff) / d {name}", atol=1e-5)
        assert not grads[name].requires_grad, f"grads[{name!r}] still requires grad: detach it"
    stale = [n for n, p in model.named_parameters() if p.grad is not None]
    assert not stale, f"activations_and_grads filled .grad of {stale[:3]}: use torch.autograd.grad"
    assert_no_hooks(model, "activations_and_grads")


@points(2)
def test_attribution_exact_when_linear(runs):
    """In a model whose logits are affine in every activation, the first-order estimate is exact."""
    lin = linear_model()
    clean, corrupted = runs["clean"], runs["corrupted"]
    _, clean_cache = cache_of(lin, clean)
    attr = m.attribution_patch_resid(lin, corrupted, clean_cache, raw_diff)
    act = m.patch_resid_by_position(lin, corrupted, clean_cache, raw_diff)
    assert_close(
        attr,
        act,
        what="attribution_patch_resid vs patch_resid_by_position (linear model)",
        atol=1e-4,
    )
    attr = m.attribution_patch_heads(lin, corrupted, clean_cache, raw_diff)
    act = m.patch_heads(lin, corrupted, clean_cache, raw_diff)
    assert_close(attr, act, what="attribution_patch_heads vs patch_heads (linear model)", atol=1e-4)
    # attention only, no LayerNorm: the last layer's heads reach the logits linearly
    attn_only = random_model(layer_norm=False, d_mlp=0)
    _, clean_cache = cache_of(attn_only, clean)
    attr = m.attribution_patch_heads(attn_only, corrupted, clean_cache, raw_diff)
    act = m.patch_heads(attn_only, corrupted, clean_cache, raw_diff)
    assert_close(
        attr[-1],
        act[-1],
        what="last-layer heads, attention-only model without LayerNorm",
        atol=1e-4,
    )
    assert_no_hooks(lin, "attribution patching")


@points(2)
def test_attribution_patch_resid(model, runs, snapshot):
    """With the clean cache moved alpha = 0.1 of the way from the corrupted run, attribution
    patching matches activation patching within 0.01 (normalized metric); halving alpha divides
    the error by more than 2.5 (a first-order method leaves a second-order error)."""
    corrupted, metric = runs["corrupted"], runs["metric"]
    out = m.attribution_patch_resid(model, corrupted, runs["clean_cache"], metric)
    shape = (model.cfg.n_layers, corrupted.shape[1])
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == shape, (
        f"attribution_patch_resid: got {getattr(out, 'shape', type(out))}, expected {shape}"
    )
    snapshot.check("resid", out, atol=1e-4)
    errors = []
    for alpha in (0.1, 0.05):
        cache = interpolate(runs["clean_cache"], runs["corrupted_cache"], alpha)
        attr = m.attribution_patch_resid(model, corrupted, cache, metric)
        act = m.patch_resid_by_position(model, corrupted, cache, metric)
        errors.append(float((attr - act).abs().max()))
    assert errors[0] < 0.01, (
        f"attribution_patch_resid at alpha 0.1: max error {errors[0]:.3g} (> 0.01)"
    )
    assert errors[1] < errors[0] / 2.5, (
        f"attribution_patch_resid: max error {errors[0]:.3g} at alpha 0.1, {errors[1]:.3g} at 0.05: "
        "expected a second-order error (about 4x smaller). Gradient taken at the corrupted run?"
    )


@points(2)
def test_attribution_patch_heads(model, runs, snapshot):
    """As for the residual stream: within 0.01 at alpha = 0.1, second-order convergence."""
    corrupted, metric = runs["corrupted"], runs["metric"]
    out = m.attribution_patch_heads(model, corrupted, runs["clean_cache"], metric)
    shape = (model.cfg.n_layers, model.cfg.n_heads)
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == shape, (
        f"attribution_patch_heads: got {getattr(out, 'shape', type(out))}, expected {shape}"
    )
    snapshot.check("heads", out, atol=1e-4)
    errors = []
    for alpha in (0.1, 0.05):
        cache = interpolate(runs["clean_cache"], runs["corrupted_cache"], alpha)
        attr = m.attribution_patch_heads(model, corrupted, cache, metric)
        act = m.patch_heads(model, corrupted, cache, metric)
        errors.append(float((attr - act).abs().max()))
    assert errors[0] < 0.01, (
        f"attribution_patch_heads at alpha 0.1: max error {errors[0]:.3g} (> 0.01)"
    )
    assert errors[1] < errors[0] / 2.5, (
        f"attribution_patch_heads: max error {errors[0]:.3g} at alpha 0.1, {errors[1]:.3g} at 0.05: "
        "expected a second-order error (about 4x smaller)"
    )


# -- the toy model of superposition --------------------------------------------------------------


@points(1)
def test_generate_batch():
    p = torch.tensor([1.0, 0.5, 0.1, 0.0])
    x = m.generate_batch(20000, p, 5, torch.Generator().manual_seed(0))
    assert isinstance(x, torch.Tensor) and tuple(x.shape) == (20000, 4, 5), (
        f"generate_batch(20000, p of 4 instances, 5 features): got "
        f"{getattr(x, 'shape', type(x))}, expected (20000, 4, 5)"
    )
    assert x.min() >= 0 and x.max() < 1, (
        f"values in [{x.min():.3g}, {x.max():.3g}], expected [0, 1)"
    )
    nonzero = (x > 0).float().mean(dim=(0, 2))
    assert_close(
        nonzero, p, what="fraction of nonzero features per instance (p = 1, .5, .1, 0)", atol=0.01
    )
    mean = x[:, 0].mean()
    assert abs(mean - 0.5) < 0.01, (
        f"mean of a dense feature {mean:.3f}: expected uniform [0, 1), 0.5"
    )
    again = m.generate_batch(20000, p, 5, torch.Generator().manual_seed(0))
    assert torch.equal(x, again), (
        "generate_batch: same generator seed, different batch: use `generator`"
    )


@points(1)
def test_toy_model_forward(snapshot):
    torch.manual_seed(0)
    toy = m.ToyModel(3, 5, 2)
    with torch.no_grad():
        toy.b_final.normal_(0, 0.5)
    x = m.generate_batch(64, torch.tensor([1.0, 0.3, 0.1]), 5, torch.Generator().manual_seed(1))
    out = toy(x)
    assert isinstance(out, torch.Tensor) and out.shape == x.shape, (
        f"ToyModel.forward: got {getattr(out, 'shape', type(out))}, expected {tuple(x.shape)}"
    )
    assert out.min() >= 0, "ToyModel.forward: negative outputs; the ReLU comes last"
    zero = toy(torch.zeros(1, 3, 5))[0]
    assert_close(zero, toy.b_final.detach().clamp(min=0), what="ToyModel on x = 0: ReLU(b_final)")
    snapshot.check("out", out, atol=1e-5)


@points(1)
def test_toy_loss(snapshot):
    gen = torch.Generator().manual_seed(0)
    x, out = torch.rand(8, 3, 4, generator=gen), torch.rand(8, 3, 4, generator=gen)
    importance = torch.tensor([1.0, 0.5, 0.25, 0.125])
    loss = m.toy_loss(out, x, importance)
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0, "toy_loss returns a scalar tensor"
    twice = m.toy_loss(out.repeat(2, 1, 1), x.repeat(2, 1, 1), importance)
    assert_close(twice, loss, what="toy_loss on the batch repeated twice (a mean over the batch)")
    split = sum(m.toy_loss(out[:, i : i + 1], x[:, i : i + 1], importance) for i in range(3))
    assert_close(loss, split, what="toy_loss vs the sum of its instances' losses")
    ones = m.toy_loss(torch.zeros(2, 1, 4), torch.ones(2, 1, 4), torch.ones(4))
    assert_close(
        ones,
        torch.tensor(1.0),
        what="toy_loss with error 1 everywhere, importance 1 (mean over features)",
    )
    snapshot.check("loss", loss)


@points(1)
def test_feature_geometry():
    angles = torch.arange(5) * 2 * math.pi / 5
    pentagon = torch.stack([angles.cos(), angles.sin()])  # (2, 5) unit vectors
    W = torch.stack([pentagon * 2, torch.zeros(2, 5)])  # (2 instances, 2, 5)
    W[1, 0, 0], W[1, 1, 1] = 3.0, 0.5  # two orthogonal features, three of norm 0
    norms, sup = m.feature_geometry(W)
    assert_close(norms, W.norm(dim=1), what="feature_geometry norms ||W_i||")
    assert torch.isfinite(sup).all(), "feature_geometry: NaN or inf for a feature of norm 0"
    cos = torch.cos(angles[1:])  # angles to the other four
    expected = (4 * cos**2).sum()  # (||W_j|| cos)^2 with ||W_j|| = 2
    assert_close(
        sup[0], expected.expand(5), what="superposition in a regular pentagon of norm-2 features"
    )
    assert_close(sup[1], torch.zeros(5), what="superposition of orthogonal (and zero) features")


@points(2)
@pytest.mark.slow
def test_toy_model_superposition():
    """Five features of importance 0.9^i through two hidden dimensions (docs: 'the regime'):
    dense features, only the two most important are represented, orthogonally (overlap < 0.2); at density 0.03
    all five are, in superposition (each overlapping the others by more than 0.5)."""
    torch.manual_seed(0)
    p = torch.tensor([1.0, 0.03])
    toy = m.ToyModel(2, 5, 2)
    m.train_toy_model(toy, p, 0.9 ** torch.arange(5.0), steps=600, batch=256, lr=2e-2)
    norms, sup = m.feature_geometry(toy.W.detach())
    shown = norms > 0.5
    assert shown[0].tolist() == [True, True, False, False, False], (
        f"dense instance: features of norm > 0.5 {shown[0].tolist()}, expected the 2 most important "
        f"(norms {[round(v, 2) for v in norms[0].tolist()]})"
    )
    assert sup[0][shown[0]].max() < 0.2, (
        f"dense instance: the two represented features overlap ({sup[0][shown[0]].max():.2f} > 0.2)"
    )
    assert shown[1].all(), (
        f"density 0.03: norms {[round(v, 2) for v in norms[1].tolist()]}, expected all five > 0.5"
    )
    assert sup[1].min() > 0.5, (
        f"density 0.03: superposition {[round(v, 2) for v in sup[1].tolist()]}, expected > 0.5 each"
    )


# -- sparse autoencoders --------------------------------------------------------------------------


def random_sae(d_in: int = 3, d_sae: int = 6) -> m.SparseAutoencoder:
    sae = m.SparseAutoencoder(d_in, d_sae, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        sae.b_enc.copy_(torch.randn(d_sae, generator=gen) * 0.5)
        sae.b_dec.copy_(torch.randn(d_in, generator=gen) * 2)
        sae.W_dec.mul_(torch.rand(d_sae, 1, generator=gen) + 0.5)
    return sae


@points(2)
def test_sae_forward(snapshot):
    sae = random_sae()
    h = torch.randn(50, 3) * 2
    out = sae(h)
    assert isinstance(out, tuple) and len(out) == 2, "SparseAutoencoder.forward returns (h_hat, z)"
    h_hat, z = out
    assert tuple(h_hat.shape) == (50, 3) and tuple(z.shape) == (50, 6), (
        f"SparseAutoencoder.forward: shapes {tuple(h_hat.shape)}, {tuple(z.shape)}, expected (50, 3), (50, 6)"
    )
    assert z.min() >= 0 and (z == 0).any(), "z = ReLU(...): expected nonnegative, some exactly 0"
    assert_close(
        h_hat,
        z @ sae.W_dec.detach() + sae.b_dec.detach(),
        what="h_hat vs z W_dec + b_dec (no ReLU after decoding)",
    )
    shift = torch.tensor([5.0, -3.0, 1.0])
    with torch.no_grad():
        sae.b_dec.add_(shift)
    h_hat2, z2 = sae(h + shift)
    assert_close(
        z2, z, what="z with input and b_dec shifted alike (b_dec is subtracted before encoding)"
    )
    assert_close(h_hat2, h_hat + shift, what="h_hat with input and b_dec shifted alike")
    with torch.no_grad():
        sae.b_dec.sub_(shift)
    snapshot.check("z", z)


@points(1)
def test_sae_loss():
    gen = torch.Generator().manual_seed(0)
    h, h_hat, z = (
        torch.randn(6, 3, generator=gen),
        torch.randn(6, 3, generator=gen),
        torch.rand(6, 4, generator=gen),
    )
    loss = m.sae_loss(h, h_hat, z, 0.3)
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0, "sae_loss returns a scalar tensor"
    twice = m.sae_loss(h.repeat(2, 1), h_hat.repeat(2, 1), z.repeat(2, 1), 0.3)
    assert_close(twice, loss, what="sae_loss on the batch repeated twice (a mean over the batch)")
    recon = m.sae_loss(torch.ones(2, 3), torch.zeros(2, 3), torch.zeros(2, 4), 0.3)
    assert_close(
        recon, torch.tensor(3.0), what="sae_loss, error 1 in each of 3 dims, z = 0 (sum over d_in)"
    )
    sparse = m.sae_loss(torch.ones(2, 3), torch.ones(2, 3), -2 * torch.ones(2, 4), 0.3)
    assert_close(
        sparse,
        torch.tensor(0.3 * 8),
        what="sae_loss, perfect reconstruction, z = -2 in 4 features (L1)",
    )


@points(1)
def test_normalize_decoder():
    sae = random_sae()
    W_dec, W_enc = sae.W_dec.detach().clone(), sae.W_enc.detach().clone()
    sae.normalize_decoder()
    norms = sae.W_dec.detach().norm(dim=1)
    assert_close(norms, torch.ones(6), what="row norms of W_dec after normalize_decoder")
    cos = torch.nn.functional.cosine_similarity(sae.W_dec.detach(), W_dec, dim=1)
    assert_close(cos, torch.ones(6), what="directions of W_dec's rows (only their length changes)")
    assert torch.equal(sae.W_enc.detach(), W_enc), "normalize_decoder changed W_enc"
    assert isinstance(sae.W_dec, torch.nn.Parameter), (
        "W_dec is no longer a Parameter: work in place"
    )


@points(2)
def test_resample_dead_features():
    sae = random_sae(3, 8)
    dead_ids = [1, 4, 5]
    with torch.no_grad():
        sae.b_enc[dead_ids] = -1e3  # never fire
    h = torch.randn(40, 3, generator=torch.Generator().manual_seed(2)) * 2
    h_hat, _ = sae(h)
    worst = ((h - h_hat) ** 2).sum(-1).topk(3).indices
    alive = [k for k in range(8) if k not in dead_ids]
    before = {n: p.detach().clone() for n, p in sae.named_parameters()}
    dead = m.resample_dead_features(sae, h)
    expected = torch.zeros(8, dtype=torch.bool)
    expected[dead_ids] = True
    assert isinstance(dead, torch.Tensor) and torch.equal(dead, expected), (
        f"resample_dead_features returned {dead.tolist() if isinstance(dead, torch.Tensor) else dead}, "
        f"expected the mask of features {dead_ids}"
    )
    for name in ("W_dec", "b_enc"):
        assert torch.equal(getattr(sae, name).detach()[alive], before[name][alive]), (
            f"live rows of {name} changed"
        )
    assert torch.equal(sae.W_enc.detach()[:, alive], before["W_enc"][:, alive]), (
        "live columns of W_enc changed"
    )
    assert torch.equal(sae.b_dec.detach(), before["b_dec"]), "b_dec changed"
    v = h[worst] - sae.b_dec.detach()
    v = v / v.norm(dim=-1, keepdim=True)
    assert_close(
        sae.W_dec.detach()[dead_ids],
        v,
        what="new W_dec rows vs the worst-reconstructed inputs - b_dec, normalized",
    )
    scale = 0.2 * before["W_enc"][:, alive].norm(dim=0).mean()
    assert_close(
        sae.W_enc.detach()[:, dead_ids],
        scale * v.T,
        what="new W_enc columns (0.2 x mean live norm)",
    )
    assert_close(sae.b_enc.detach()[dead_ids], torch.zeros(3), what="new b_enc entries")
    _, z = sae(h[worst])
    assert (z[torch.arange(3), torch.tensor(dead_ids)] > 0).all(), (
        "a resampled feature does not fire on its input"
    )
    again = m.resample_dead_features(sae, h)
    assert isinstance(again, torch.Tensor) and not again[dead_ids].any(), (
        "resampled features still reported dead"
    )


@points(3)
@pytest.mark.slow
def test_sae_recovers_toy_features():
    """An SAE (10 features) on the shipped toy model's hidden layer (5 features in 2 dimensions,
    density 0.05) must find every feature direction W_i (cosine > 0.95 with some decoder row),
    reconstruct h with relative squared error < 5 %, use fewer than 2 features per input (L0)
    and end with unit decoder rows."""
    toy, info = m.load_toy_model()
    inst = 3
    W = toy.W.detach()[inst]  # (2, 5)
    p = info["feature_probability"][inst : inst + 1]
    gen = torch.Generator().manual_seed(1)

    def sample(batch: int) -> torch.Tensor:
        return m.generate_batch(batch, p, 5, gen)[:, 0] @ W.T  # h = W x, (batch, 2)

    torch.manual_seed(0)
    sae = m.SparseAutoencoder(2, 10, torch.Generator().manual_seed(0))
    sae(torch.zeros(8, 2))  # forward first: this test grades the SAE as a whole
    m.train_sae(sae, sample, steps=1000, batch=256, lr=1e-2, l1_coeff=0.1, resample_every=250)
    dec = sae.W_dec.detach()
    assert_close(
        dec.norm(dim=1), torch.ones(10), what="SAE decoder row norms after training", atol=1e-4
    )
    cos = (W / W.norm(dim=0)).T @ dec.T  # (5 true features, 10 SAE features)
    best = cos.max(dim=1).values
    assert best.min() > 0.95, (
        f"best cosine per true feature {[round(c, 3) for c in best.tolist()]}: expected > 0.95"
    )
    h = sample(4000)
    with torch.no_grad():
        h_hat, z = sae(h)
    rel = float(((h - h_hat) ** 2).sum() / (h**2).sum())
    l0 = float((z > 0).float().sum(-1).mean())
    assert rel < 0.05, f"SAE relative reconstruction error {rel:.3f}, expected < 0.05"
    assert l0 < 2, f"SAE L0 {l0:.2f} features per input, expected < 2"
