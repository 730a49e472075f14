"""Day w3d6_transformer_interp: patching, superposition and sparse autoencoders.

Two small trained models, both made by `w3d6_transformer_interp_assets/train.py` (fixed seeds):

- `BracketTransformer` (given): a 2-layer bidirectional transformer that reads "(" and ")" after
  a START token and classifies, at position 0, whether the brackets are balanced. Every
  intermediate tensor passes a named `HookPoint`, as in TransformerLens.
- `ToyModel`: Elhage et al.'s toy model of superposition, x' = ReLU(W^T W x + b), trained on
  sparse synthetic features; a `SparseAutoencoder` then recovers its features from h = W x.

Exercises, in order: `run_with_hooks`, `logit_diff` and `normalized_metric`, `patch_activation`,
`patch_resid_by_position`, `patch_heads`, `path_patch`, `activations_and_grads`,
`attribution_patch_resid`, `attribution_patch_heads`; `generate_batch`, `ToyModel.forward`,
`toy_loss`, `feature_geometry`; `SparseAutoencoder.forward`, `sae_loss`,
`SparseAutoencoder.normalize_decoder`, `resample_dead_features`.

References: Meng et al. 2022 (ROME, causal tracing); Wang et al. 2022 ("Interpretability in the
Wild", path patching); Nanda 2023 ("Attribution Patching"); Elhage et al. 2022 ("Toy Models of
Superposition"); Bricken et al. 2023 ("Towards Monosemanticity"). Read
docs/w3d6_transformer_interp.md for the maths.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

ASSETS = Path(__file__).resolve().parent / "w3d6_transformer_interp_assets"
START, OPEN, CLOSE = 0, 1, 2  # token ids; the model reads [START, b_1 .. b_n]
UNBALANCED, BALANCED = 0, 1  # the two logits the classifier outputs

Metric = Callable[[Tensor], Tensor]  # logits (batch, 2) -> a scalar tensor
Hook = Callable[[Tensor], Tensor | None]  # activation -> replacement (or None: keep it)

# -- the brackets model (given) ------------------------------------------------------------------


@dataclass(frozen=True)
class BracketsConfig:
    n_brackets: int = 16
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 2
    d_head: int = 16
    d_mlp: int = 64  # 0: attention only
    layer_norm: bool = True  # False: identity instead of every LayerNorm
    ln_eps: float = 1e-5

    @property
    def n_ctx(self) -> int:
        return self.n_brackets + 1


class HookPoint(nn.Identity):
    """Returns its input: a named place to attach forward hooks (caching, patching)."""


class LayerNorm(nn.Module):
    def __init__(self, cfg: BracketsConfig):
        super().__init__()
        self.w = nn.Parameter(torch.ones(cfg.d_model))
        self.b = nn.Parameter(torch.zeros(cfg.d_model))
        self.eps, self.on = cfg.ln_eps, cfg.layer_norm

    def forward(self, x: Float[Tensor, "b s d"]) -> Float[Tensor, "b s d"]:
        if not self.on:
            return x
        return F.layer_norm(x, x.shape[-1:], self.w, self.b, self.eps)


class Attention(nn.Module):
    """Bidirectional multi-head attention with per-head weights (Elhage et al. 2021's names).

    W_Q, W_K, W_V: (n_heads, d_model, d_head); W_O: (n_heads, d_head, d_model). Head h writes
    z_h = softmax(q_h k_h^T / sqrt(d_head)) v_h; the layer's output is sum_h z_h W_O[h] + b_O.
    """

    def __init__(self, cfg: BracketsConfig):
        super().__init__()
        n, d, dh = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q, self.W_K, self.W_V = (nn.Parameter(torch.randn(n, d, dh) / d**0.5) for _ in "qkv")
        self.W_O = nn.Parameter(torch.randn(n, dh, d) / (n * dh) ** 0.5)
        self.b_Q, self.b_K, self.b_V = (nn.Parameter(torch.zeros(n, dh)) for _ in "qkv")
        self.b_O = nn.Parameter(torch.zeros(d))
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_pattern = HookPoint()  # (b, head, query, key)
        self.hook_z = HookPoint()  # (b, s, head, d_head)

    def forward(self, x: Float[Tensor, "b s d"]) -> Float[Tensor, "b s d"]:
        q = self.hook_q(torch.einsum("bsd,hde->bshe", x, self.W_Q) + self.b_Q)  # (b, s, h, dh)
        k = self.hook_k(torch.einsum("bsd,hde->bshe", x, self.W_K) + self.b_K)
        v = self.hook_v(torch.einsum("bsd,hde->bshe", x, self.W_V) + self.b_V)
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(q.shape[-1])
        pattern = self.hook_pattern(scores.softmax(-1))  # (b, h, q, k)
        z = self.hook_z(torch.einsum("bhqk,bkhe->bqhe", pattern, v))  # (b, s, h, dh)
        return torch.einsum("bshe,hed->bsd", z, self.W_O) + self.b_O


class MLP(nn.Module):
    def __init__(self, cfg: BracketsConfig):
        super().__init__()
        self.W_in = nn.Parameter(torch.randn(cfg.d_model, cfg.d_mlp) / cfg.d_model**0.5)
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.randn(cfg.d_mlp, cfg.d_model) / cfg.d_mlp**0.5)
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        self.hook_post = HookPoint()  # (b, s, d_mlp), after the ReLU

    def forward(self, x: Float[Tensor, "b s d"]) -> Float[Tensor, "b s d"]:
        return self.hook_post(F.relu(x @ self.W_in + self.b_in)) @ self.W_out + self.b_out


class Block(nn.Module):
    """Pre-LN: resid_mid = resid_pre + attn(ln1(resid_pre)); resid_post = resid_mid + mlp(ln2(.))."""

    def __init__(self, cfg: BracketsConfig):
        super().__init__()
        self.ln1, self.attn = LayerNorm(cfg), Attention(cfg)
        self.ln2, self.mlp = LayerNorm(cfg), (MLP(cfg) if cfg.d_mlp else None)
        self.hook_resid_pre, self.hook_attn_out = HookPoint(), HookPoint()
        self.hook_resid_mid, self.hook_mlp_out = HookPoint(), HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, x: Float[Tensor, "b s d"]) -> Float[Tensor, "b s d"]:
        x = self.hook_resid_pre(x)
        x = self.hook_resid_mid(x + self.hook_attn_out(self.attn(self.ln1(x))))
        if self.mlp is not None:
            x = x + self.hook_mlp_out(self.mlp(self.ln2(x)))
        return self.hook_resid_post(x)


class BracketTransformer(nn.Module):
    """tokens (b, n_ctx) -> W_E[tokens] + W_pos -> blocks -> ln_final -> position 0 -> W_U + b_U.

    Returns the classifier's logits (b, 2): index 0 "unbalanced", index 1 "balanced". Hook points
    ("hook_embed", "blocks.{l}.hook_resid_pre", "blocks.{l}.attn.hook_z", ...) are listed by
    `model.named_modules()`.
    """

    def __init__(self, cfg: BracketsConfig = BracketsConfig()):
        super().__init__()
        self.cfg = cfg
        self.W_E = nn.Parameter(torch.randn(3, cfg.d_model))
        self.W_pos = nn.Parameter(torch.randn(cfg.n_ctx, cfg.d_model))
        self.hook_embed, self.hook_pos_embed = HookPoint(), HookPoint()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = LayerNorm(cfg)
        self.W_U = nn.Parameter(torch.randn(cfg.d_model, 2) / cfg.d_model**0.5)
        self.b_U = nn.Parameter(torch.zeros(2))

    def forward(self, tokens: Int[Tensor, "b s"]) -> Float[Tensor, "b 2"]:
        x = self.hook_embed(self.W_E[tokens]) + self.hook_pos_embed(self.W_pos[: tokens.shape[1]])
        for block in self.blocks:
            x = block(x)
        return self.ln_final(x)[:, 0] @ self.W_U + self.b_U


def load_brackets_model(path: Path | str = ASSETS / "brackets.pt") -> BracketTransformer:
    """The trained classifier shipped with the day, in eval mode."""
    saved = torch.load(path, weights_only=True)
    model = BracketTransformer(BracketsConfig(**saved["config"]))
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def tokenize(strings: Sequence[str]) -> Int[Tensor, "b s"]:
    """["(())", ...] -> [[START, OPEN, OPEN, CLOSE, CLOSE], ...]; all strings the same length."""
    ids = {"(": OPEN, ")": CLOSE}
    return torch.tensor([[START] + [ids[c] for c in s] for s in strings])


def is_balanced(s: str) -> bool:
    """Every prefix has at least as many "(" as ")", and the counts are equal at the end."""
    elevation = 0
    for c in s:
        elevation += 1 if c == "(" else -1
        if elevation < 0:
            return False
    return elevation == 0


def random_balanced(n: int, gen: torch.Generator) -> str:
    """A random balanced string of n brackets (rejection sampling from shuffles of n/2 + n/2)."""
    while True:
        order = torch.randperm(n, generator=gen) < n // 2
        s = "".join("(" if o else ")" for o in order.tolist())
        if is_balanced(s):
            return s


def corrupt(s: str) -> str | None:
    """Swap the first "()" found at elevation 0 into ")(": same counts, now unbalanced."""
    elevation = 0
    for i in range(len(s) - 1):
        if elevation == 0 and s[i : i + 2] == "()":
            return s[:i] + ")(" + s[i + 2 :]
        elevation += 1 if s[i] == "(" else -1
    return None


def clean_corrupted_pairs(
    n: int, n_brackets: int = 16, gen: torch.Generator | None = None
) -> tuple[list[str], list[str]]:
    """n balanced strings and their corruptions (one "()" at elevation 0 swapped to ")(")."""
    gen = gen if gen is not None else torch.Generator().manual_seed(0)
    clean, corrupted = [], []
    while len(clean) < n:
        s = random_balanced(n_brackets, gen)
        c = corrupt(s)
        if c is not None:
            clean.append(s)
            corrupted.append(c)
    return clean, corrupted


def run_with_cache(
    model: nn.Module, tokens: Int[Tensor, "b s"]
) -> tuple[Tensor, dict[str, Tensor]]:
    """Logits and every HookPoint's output (detached), without gradients. Hooks removed after."""
    cache: dict[str, Tensor] = {}
    handles = [
        module.register_forward_hook(lambda mod, i, o, n=name: cache.__setitem__(n, o.detach()))
        for name, module in model.named_modules()
        if isinstance(module, HookPoint)
    ]
    try:
        with torch.no_grad():
            logits = model(tokens)
    finally:
        for handle in handles:
            handle.remove()
    return logits, cache


# -- hooks and metrics ---------------------------------------------------------------------------


def run_with_hooks(
    model: nn.Module, tokens: Int[Tensor, "b s"], fwd_hooks: Sequence[tuple[str, Hook]]
) -> Tensor:
    """Run `model(tokens)` with each `fn` of `fwd_hooks` applied at the HookPoint `name`.

    `fn(activation)` returns the replacement activation, or None to keep it (a hook that only
    reads). Several hooks may share a name; they run in order. Every hook is removed before
    returning, also when the forward pass raises. Gradients are left as the caller set them.
    """
    # BEGIN SOLUTION
    modules = dict(model.named_modules())

    def wrap(fn: Hook):
        return lambda module, inputs, output: fn(output)

    handles = []
    try:
        for name, fn in fwd_hooks:
            handles.append(modules[name].register_forward_hook(wrap(fn)))
        return model(tokens)
    finally:
        for handle in handles:
            handle.remove()
    # END SOLUTION


def logit_diff(logits: Float[Tensor, "b 2"]) -> Float[Tensor, ""]:
    """Mean over the batch of logit[BALANCED] - logit[UNBALANCED]."""
    # BEGIN SOLUTION
    return (logits[:, BALANCED] - logits[:, UNBALANCED]).mean()
    # END SOLUTION


def normalized_metric(
    logits: Float[Tensor, "b 2"], clean_diff: float, corrupted_diff: float
) -> Float[Tensor, ""]:
    """(logit_diff(logits) - corrupted_diff) / (clean_diff - corrupted_diff): 0 on the corrupted
    run, 1 on the clean run."""
    # BEGIN SOLUTION
    return (logit_diff(logits) - corrupted_diff) / (clean_diff - corrupted_diff)
    # END SOLUTION


# -- activation patching -------------------------------------------------------------------------


def patch_activation(
    model: nn.Module,
    corrupted_tokens: Int[Tensor, "b s"],
    clean_cache: dict[str, Tensor],
    name: str,
    index: tuple = (...,),
) -> Float[Tensor, "b 2"]:
    """Logits of the corrupted run with `activation[index]` at `name` replaced by the clean one.

    `index` selects what to patch: `(...,)` everything, `(slice(None), pos)` one position of a
    (b, s, ...) activation, `(slice(None), slice(None), head)` one head of `hook_z`. Replace
    out of place (clone), never write into the cache. No gradients.
    """

    # BEGIN SOLUTION
    def hook(act: Tensor) -> Tensor:
        act = act.clone()
        act[index] = clean_cache[name][index]
        return act

    with torch.no_grad():
        return run_with_hooks(model, corrupted_tokens, [(name, hook)])
    # END SOLUTION


def patch_resid_by_position(
    model: BracketTransformer,
    corrupted_tokens: Int[Tensor, "b s"],
    clean_cache: dict[str, Tensor],
    metric: Metric,
) -> Float[Tensor, "layer pos"]:
    """metric after patching `blocks.{layer}.hook_resid_pre` at one position, for every pair."""
    # BEGIN SOLUTION
    n_layers, seq = model.cfg.n_layers, corrupted_tokens.shape[1]
    out = torch.zeros(n_layers, seq)
    for layer in range(n_layers):
        for pos in range(seq):
            name = f"blocks.{layer}.hook_resid_pre"
            logits = patch_activation(
                model, corrupted_tokens, clean_cache, name, (slice(None), pos)
            )
            out[layer, pos] = metric(logits)
    return out
    # END SOLUTION


def patch_heads(
    model: BracketTransformer,
    corrupted_tokens: Int[Tensor, "b s"],
    clean_cache: dict[str, Tensor],
    metric: Metric,
) -> Float[Tensor, "layer head"]:
    """metric after patching one head's output `blocks.{layer}.attn.hook_z[:, :, head]` at every
    position, for every (layer, head)."""
    # BEGIN SOLUTION
    cfg = model.cfg
    out = torch.zeros(cfg.n_layers, cfg.n_heads)
    for layer in range(cfg.n_layers):
        for head in range(cfg.n_heads):
            name, index = f"blocks.{layer}.attn.hook_z", (slice(None), slice(None), head)
            out[layer, head] = metric(
                patch_activation(model, corrupted_tokens, clean_cache, name, index)
            )
    return out
    # END SOLUTION


def path_patch(
    model: BracketTransformer,
    corrupted_tokens: Int[Tensor, "b s"],
    clean_cache: dict[str, Tensor],
    corrupted_cache: dict[str, Tensor],
    sender: tuple[int, int],
    receivers: Sequence[tuple[int, int, str]] | None,
    metric: Metric,
) -> Float[Tensor, ""]:
    """metric when the clean output of head `sender` = (layer, head) reaches only `receivers`.

    Step 1: run the corrupted tokens with the sender's `hook_z` patched from the clean cache and
    every other head's `hook_z` frozen to its corrupted value (MLPs and LayerNorms recompute).
    `receivers=None`: the path ends at the logits, return metric(step-1 logits). Otherwise each
    receiver (layer, head, "q" | "k" | "v") names the input of a later head: record its
    `blocks.{layer}.attn.hook_{q|k|v}[:, :, head]` in step 1, then step 2: run the corrupted
    tokens again with only those receiver inputs patched to their step-1 values.
    """
    # BEGIN SOLUTION
    s_layer, s_head = sender
    hooks: list[tuple[str, Hook]] = []
    for layer in range(model.cfg.n_layers):
        name = f"blocks.{layer}.attn.hook_z"

        def freeze(act: Tensor, layer: int = layer, name: str = name) -> Tensor:
            new = corrupted_cache[name].clone()
            if layer == s_layer:
                new[:, :, s_head] = clean_cache[name][:, :, s_head]
            return new

        hooks.append((name, freeze))
    recorded: dict[tuple[int, int, str], Tensor] = {}
    for layer, head, kind in receivers or ():

        def record(act: Tensor, key=(layer, head, kind)) -> None:
            recorded[key] = act[:, :, key[1]].clone()

        hooks.append((f"blocks.{layer}.attn.hook_{kind}", record))
    with torch.no_grad():
        logits = run_with_hooks(model, corrupted_tokens, hooks)
        if receivers is None:
            return metric(logits)

        def patch(act: Tensor, key: tuple[int, int, str]) -> Tensor:
            act = act.clone()
            act[:, :, key[1]] = recorded[key]
            return act

        step2 = [
            (f"blocks.{key[0]}.attn.hook_{key[2]}", lambda act, key=key: patch(act, key))
            for key in recorded
        ]
        return metric(run_with_hooks(model, corrupted_tokens, step2))
    # END SOLUTION


# -- attribution patching ------------------------------------------------------------------------


def activations_and_grads(
    model: nn.Module, tokens: Int[Tensor, "b s"], metric: Metric, names: Sequence[str]
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """One forward and one backward pass: the activations at `names` and d metric / d activation.

    Both dicts map each name to a detached tensor of the activation's shape. Use
    `torch.autograd.grad` (it leaves the parameters' .grad alone); remove the hooks.
    """
    # BEGIN SOLUTION
    acts: dict[str, Tensor] = {}

    def keep(name: str) -> Hook:
        return lambda act: acts.__setitem__(name, act)

    with torch.enable_grad():
        value = metric(run_with_hooks(model, tokens, [(n, keep(n)) for n in names]))
        grads = torch.autograd.grad(value, [acts[n] for n in names])
    return (
        {n: acts[n].detach() for n in names},
        {n: g.detach() for n, g in zip(names, grads, strict=True)},
    )
    # END SOLUTION


def attribution_patch_resid(
    model: BracketTransformer,
    corrupted_tokens: Int[Tensor, "b s"],
    clean_cache: dict[str, Tensor],
    metric: Metric,
) -> Float[Tensor, "layer pos"]:
    """First-order estimate of `patch_resid_by_position`: metric(corrupted) plus
    sum over batch and d_model of (clean - corrupted activation) * gradient at the corrupted run."""
    # BEGIN SOLUTION
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        base = metric(model(corrupted_tokens))
    acts, grads = activations_and_grads(model, corrupted_tokens, metric, names)
    rows = [((clean_cache[n] - acts[n]) * grads[n]).sum(dim=(0, 2)) for n in names]  # (pos,) each
    return base + torch.stack(rows)  # (layer, pos)
    # END SOLUTION


def attribution_patch_heads(
    model: BracketTransformer,
    corrupted_tokens: Int[Tensor, "b s"],
    clean_cache: dict[str, Tensor],
    metric: Metric,
) -> Float[Tensor, "layer head"]:
    """First-order estimate of `patch_heads`, from the gradient with respect to `hook_z`."""
    # BEGIN SOLUTION
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        base = metric(model(corrupted_tokens))
    acts, grads = activations_and_grads(model, corrupted_tokens, metric, names)
    # (b, s, head, d_head) -> (head,) per layer
    rows = [((clean_cache[n] - acts[n]) * grads[n]).sum(dim=(0, 1, 3)) for n in names]
    return base + torch.stack(rows)  # (layer, head)
    # END SOLUTION


# -- the toy model of superposition --------------------------------------------------------------


def generate_batch(
    batch: int,
    feature_probability: Float[Tensor, " inst"],
    n_features: int,
    generator: torch.Generator | None = None,
) -> Float[Tensor, "batch inst feat"]:
    """Sparse features: each x_i is 0 with probability 1 - p (p per instance), otherwise
    uniform in [0, 1). Draw the values first, then the mask, both from `generator`."""
    # BEGIN SOLUTION
    shape = (batch, feature_probability.shape[0], n_features)
    values = torch.rand(shape, generator=generator)
    mask = torch.rand(shape, generator=generator) < feature_probability[:, None]
    return values * mask
    # END SOLUTION


class ToyModel(nn.Module):
    """n_instances independent models x' = ReLU(W^T W x + b), W: (n_hidden, n_features) each."""

    def __init__(self, n_instances: int, n_features: int = 5, n_hidden: int = 2):
        super().__init__()
        self.W = nn.Parameter(torch.empty(n_instances, n_hidden, n_features))
        nn.init.xavier_normal_(self.W)
        self.b_final = nn.Parameter(torch.zeros(n_instances, n_features))

    def hidden(self, x: Float[Tensor, "batch inst feat"]) -> Float[Tensor, "batch inst hid"]:
        """h = W x, the bottleneck the sparse autoencoder reads."""
        return torch.einsum("bif,ihf->bih", x, self.W)

    def forward(self, x: Float[Tensor, "batch inst feat"]) -> Float[Tensor, "batch inst feat"]:
        """x' = ReLU(W^T (W x) + b_final), each instance with its own W and b_final."""
        # BEGIN SOLUTION
        h = self.hidden(x)  # (batch, inst, hid)
        return F.relu(torch.einsum("bih,ihf->bif", h, self.W) + self.b_final)
        # END SOLUTION


def toy_loss(
    out: Float[Tensor, "batch inst feat"],
    x: Float[Tensor, "batch inst feat"],
    importance: Float[Tensor, " feat"],
) -> Float[Tensor, ""]:
    """Importance-weighted squared error: mean over batch and features, summed over instances."""
    # BEGIN SOLUTION
    return (importance * (x - out) ** 2).mean(dim=(0, 2)).sum()
    # END SOLUTION


def train_toy_model(
    model: ToyModel,
    feature_probability: Float[Tensor, " inst"],
    importance: Float[Tensor, " feat"],
    steps: int = 2000,
    batch: int = 1024,
    lr: float = 1e-2,
    seed: int = 0,
) -> list[float]:
    """Adam on fresh batches from `generate_batch`; returns the loss every 100 steps."""
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        x = generate_batch(batch, feature_probability, model.W.shape[-1], gen)
        loss = toy_loss(model(x), x, importance)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            losses.append(loss.item())
    return losses


def feature_geometry(
    W: Float[Tensor, "inst hid feat"],
) -> tuple[Float[Tensor, "inst feat"], Float[Tensor, "inst feat"]]:
    """Per feature i: its norm ||W_i|| and its superposition sum_{j != i} (W_i/||W_i|| . W_j)^2.

    W_i = W[:, :, i] is feature i's direction in the hidden space. Guard the division: a feature
    of norm 0 has superposition 0.
    """
    # BEGIN SOLUTION
    norms = W.norm(dim=1)  # (inst, feat)
    unit = W / norms.clamp(min=1e-8)[:, None]  # (inst, hid, feat)
    overlap = torch.einsum("ihf,ihg->ifg", unit, W) ** 2  # (inst, feat, feat)
    overlap = overlap * (1 - torch.eye(W.shape[-1]))  # drop j == i
    return norms, overlap.sum(-1)
    # END SOLUTION


def load_toy_model(path: Path | str = ASSETS / "toy_model.pt") -> tuple[ToyModel, dict]:
    """The trained toy model and its settings (feature_probability, importance, n_hidden, ...)."""
    saved = torch.load(path, weights_only=True)
    info = saved["info"]
    model = ToyModel(info["n_instances"], info["n_features"], info["n_hidden"])
    model.load_state_dict(saved["state_dict"])
    return model.eval(), info


# -- sparse autoencoders --------------------------------------------------------------------------


class SparseAutoencoder(nn.Module):
    """z = ReLU((h - b_dec) W_enc + b_enc), h_hat = z W_dec + b_dec, decoder rows of norm 1.

    W_enc: (d_in, d_sae), W_dec: (d_sae, d_in). b_dec is the centring bias: subtracted before
    encoding and added back after decoding.
    """

    def __init__(self, d_in: int, d_sae: int, generator: torch.Generator | None = None):
        super().__init__()
        W = torch.randn(d_in, d_sae, generator=generator)
        W = W / W.norm(dim=0, keepdim=True)
        self.W_enc = nn.Parameter(W.clone())
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.W_dec = nn.Parameter(W.T.clone())
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    def forward(
        self, h: Float[Tensor, "batch d_in"]
    ) -> tuple[Float[Tensor, "batch d_in"], Float[Tensor, "batch d_sae"]]:
        """(h_hat, z): the reconstruction and the feature activations."""
        # BEGIN SOLUTION
        z = F.relu((h - self.b_dec) @ self.W_enc + self.b_enc)  # (batch, d_sae)
        return z @ self.W_dec + self.b_dec, z
        # END SOLUTION

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Scale every row of W_dec to norm 1, in place (`.data` or under no_grad)."""
        # BEGIN SOLUTION
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True))
        # END SOLUTION


def sae_loss(
    h: Float[Tensor, "batch d_in"],
    h_hat: Float[Tensor, "batch d_in"],
    z: Float[Tensor, "batch d_sae"],
    l1_coeff: float,
) -> Float[Tensor, ""]:
    """mean over the batch of ||h - h_hat||^2 + l1_coeff * ||z||_1 (sums over d_in and d_sae)."""
    # BEGIN SOLUTION
    return ((h - h_hat) ** 2).sum(-1).mean() + l1_coeff * z.abs().sum(-1).mean()
    # END SOLUTION


@torch.no_grad()
def resample_dead_features(
    sae: SparseAutoencoder, h: Float[Tensor, "batch d_in"]
) -> Bool[Tensor, " d_sae"]:
    """Re-initialize the features that fire on no input of `h`; return which were dead.

    Take the inputs the SAE reconstructs worst (largest ||h - h_hat||^2, `topk`, one per dead
    feature, in order). For dead feature k (in increasing order) and its input x:
    v = (x - b_dec) / ||x - b_dec||; W_dec[k] = v; W_enc[:, k] = 0.2 * a * v where a is the mean
    norm of the live features' W_enc columns (1 if none is alive); b_enc[k] = 0. Live features
    stay untouched.
    """
    # BEGIN SOLUTION
    h_hat, z = sae(h)
    dead = (z > 0).sum(0) == 0  # (d_sae,)
    n_dead = int(dead.sum())
    if n_dead == 0:
        return dead
    worst = ((h - h_hat) ** 2).sum(-1).topk(n_dead).indices  # (n_dead,)
    v = h[worst] - sae.b_dec
    v = v / v.norm(dim=-1, keepdim=True)  # (n_dead, d_in)
    alive = ~dead
    scale = sae.W_enc[:, alive].norm(dim=0).mean() if alive.any() else torch.tensor(1.0)
    sae.W_dec[dead] = v
    sae.W_enc[:, dead] = 0.2 * scale * v.T
    sae.b_enc[dead] = 0.0
    return dead
    # END SOLUTION


def train_sae(
    sae: SparseAutoencoder,
    sample: Callable[[int], Tensor],
    steps: int = 2000,
    batch: int = 512,
    l1_coeff: float = 0.1,
    lr: float = 3e-3,
    resample_every: int = 500,
) -> list[dict[str, float]]:
    """Adam on `sample(batch)` activations; the decoder is normalized after every step, dead
    features resampled every `resample_every` steps (fresh optimizer then). Returns stats."""
    optimizer = torch.optim.Adam(sae.parameters(), lr=lr)
    sae.normalize_decoder()
    history = []
    for step in range(steps):
        h = sample(batch)
        h_hat, z = sae(h)
        loss = sae_loss(h, h_hat, z, l1_coeff)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sae.normalize_decoder()
        if resample_every and (step + 1) % resample_every == 0 and step + 1 < steps:
            if resample_dead_features(sae, sample(4 * batch)).any():
                optimizer = torch.optim.Adam(sae.parameters(), lr=lr)
        if step % 100 == 0 or step == steps - 1:
            history.append(
                {"step": step, "loss": loss.item(), "l0": (z > 0).float().sum(-1).mean().item()}
            )
    return history


def save_toy_model(model: ToyModel, info: dict, path: Path | str) -> None:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save({"info": info, "state_dict": state}, path)


def save_brackets_model(model: BracketTransformer, path: Path | str) -> None:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save({"config": asdict(model.cfg), "state_dict": state}, path)
