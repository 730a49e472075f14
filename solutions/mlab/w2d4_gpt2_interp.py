"""Day w2d4_gpt2_interp: reading a transformer's circuits.

Two models:

- a tiny random GPT-2 from transformers (`GPT2LMHeadModel`) for the logit lens, read through hooks
  on its modules;
- `AttnOnlyTransformer` (given): a 2-layer, attention-only, GPT-2-style model with named
  `HookPoint`s (as in TransformerLens), trained by `w2d4_gpt2_interp_assets/train_attn_only.py`
  on repeated random tokens until it has induction heads (`load_attn_only()`).

Exercises, in order: a cache of activations (`run_with_cache`), the residual stream of GPT-2 and
the `logit_lens`, `direct_logit_attribution`, per-token loss, head detectors (previous-token,
first-token, current-token) and `induction_score`, zero and mean ablation, QK and OV circuits as
a `FactoredMatrix`, and composition scores.

References: Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits"; Olsson et al.
2022, "In-context Learning and Induction Heads"; nostalgebraist 2020, "interpreting GPT: the logit
lens". Read docs/w2d4_gpt2_interp.md for the maths.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

ASSETS = Path(__file__).resolve().parent / "w2d4_gpt2_interp_assets"
BOS = 0  # token 0 starts every sequence; the random tokens are 1 .. d_vocab - 1

# -- the attention-only model (given) -----------------------------------------------------------


@dataclass(frozen=True)
class AttnOnlyConfig:
    d_vocab: int = 64
    n_ctx: int = 64
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    d_head: int = 16
    ln_eps: float = 1e-5


class HookPoint(nn.Identity):
    """Returns its input: a named place to attach forward hooks (`run_with_cache`, ablations)."""


class Attention(nn.Module):
    """Multi-head causal self-attention with per-head weights, named as in the Framework paper.

    W_Q, W_K, W_V: (n_heads, d_model, d_head); W_O: (n_heads, d_head, d_model). Head h reads
    q = x W_Q[h] + b_Q[h], k, v likewise, writes z_h = softmax(q k^T / sqrt(d_head)) v, and the
    layer's output is sum_h z_h W_O[h] + b_O.
    """

    def __init__(self, cfg: AttnOnlyConfig):
        super().__init__()
        n, d, dh = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q, self.W_K, self.W_V = (nn.Parameter(torch.randn(n, d, dh) / d**0.5) for _ in "qkv")
        self.W_O = nn.Parameter(torch.randn(n, dh, d) / (n * dh) ** 0.5)
        self.b_Q, self.b_K, self.b_V = (nn.Parameter(torch.zeros(n, dh)) for _ in "qkv")
        self.b_O = nn.Parameter(torch.zeros(d))
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_attn_scores = HookPoint()  # (batch, head, query, key), masked, before softmax
        self.hook_pattern = HookPoint()  # (batch, head, query, key)
        self.hook_z = HookPoint()  # (batch, seq, head, d_head)

    def forward(self, x: Float[Tensor, "b s d"]) -> Float[Tensor, "b s d"]:
        q = self.hook_q(torch.einsum("bsd,hde->bshe", x, self.W_Q) + self.b_Q)  # (b, s, h, dh)
        k = self.hook_k(torch.einsum("bsd,hde->bshe", x, self.W_K) + self.b_K)
        v = self.hook_v(torch.einsum("bsd,hde->bshe", x, self.W_V) + self.b_V)
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(q.shape[-1])
        s = x.shape[1]
        causal = torch.ones(s, s, dtype=torch.bool, device=x.device).tril()
        scores = self.hook_attn_scores(scores.masked_fill(~causal, float("-inf")))
        pattern = self.hook_pattern(scores.softmax(-1))  # (b, h, q, k)
        z = self.hook_z(torch.einsum("bhqk,bkhe->bqhe", pattern, v))  # (b, s, h, dh)
        return torch.einsum("bshe,hed->bsd", z, self.W_O) + self.b_O


class AttnOnlyBlock(nn.Module):
    """resid_post = resid_pre + attn(resid_pre): no MLP, no LayerNorm inside the block."""

    def __init__(self, cfg: AttnOnlyConfig):
        super().__init__()
        self.hook_resid_pre = HookPoint()
        self.attn = Attention(cfg)
        self.hook_attn_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, x: Float[Tensor, "b s d"]) -> Float[Tensor, "b s d"]:
        x = self.hook_resid_pre(x)
        return self.hook_resid_post(x + self.hook_attn_out(self.attn(x)))


class LayerNorm(nn.Module):
    """LayerNorm whose scale sigma = sqrt(var(x) + eps) is hooked: `ln_final.hook_scale`."""

    def __init__(self, cfg: AttnOnlyConfig):
        super().__init__()
        self.w, self.b = (
            nn.Parameter(torch.ones(cfg.d_model)),
            nn.Parameter(torch.zeros(cfg.d_model)),
        )
        self.eps = cfg.ln_eps
        self.hook_scale = HookPoint()  # (b, s, 1)

    def forward(self, x: Float[Tensor, "b s d"]) -> Float[Tensor, "b s d"]:
        x = x - x.mean(-1, keepdim=True)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        return x / scale * self.w + self.b


class AttnOnlyTransformer(nn.Module):
    """tokens -> W_E[tokens] + W_pos -> blocks -> ln_final -> W_U + b_U (logits).

    Every intermediate tensor passes a `HookPoint`; their names (`model.named_modules()`) are
    "hook_embed", "hook_pos_embed", "blocks.{l}.hook_resid_pre", "blocks.{l}.attn.hook_pattern",
    "blocks.{l}.attn.hook_z", "blocks.{l}.hook_attn_out", "blocks.{l}.hook_resid_post",
    "ln_final.hook_scale", ...
    """

    def __init__(self, cfg: AttnOnlyConfig = AttnOnlyConfig()):
        super().__init__()
        self.cfg = cfg
        self.W_E = nn.Parameter(torch.randn(cfg.d_vocab, cfg.d_model) * 0.1)
        self.W_pos = nn.Parameter(torch.randn(cfg.n_ctx, cfg.d_model) * 0.1)
        self.hook_embed, self.hook_pos_embed = HookPoint(), HookPoint()
        self.blocks = nn.ModuleList(AttnOnlyBlock(cfg) for _ in range(cfg.n_layers))
        self.ln_final = LayerNorm(cfg)
        self.W_U = nn.Parameter(torch.randn(cfg.d_model, cfg.d_vocab) / cfg.d_model**0.5)
        self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab))

    def forward(self, tokens: Int[Tensor, "b s"]) -> Float[Tensor, "b s v"]:
        x = self.hook_embed(self.W_E[tokens]) + self.hook_pos_embed(self.W_pos[: tokens.shape[1]])
        for block in self.blocks:
            x = block(x)
        return self.ln_final(x) @ self.W_U + self.b_U


def load_attn_only(path: Path | str = ASSETS / "attn_only_2l.pt") -> AttnOnlyTransformer:
    """The trained 2-layer attention-only model shipped with the day, in eval mode."""
    saved = torch.load(path, weights_only=True)
    model = AttnOnlyTransformer(AttnOnlyConfig(**saved["config"]))
    model.load_state_dict({k: v.float() for k, v in saved["state_dict"].items()})
    return model.eval()


def save_attn_only(model: AttnOnlyTransformer, path: Path | str) -> None:
    """Weights in float16 (~65 KB) with the config; `load_attn_only` reads them back as float32."""
    state = {k: v.detach().half() for k, v in model.state_dict().items()}
    torch.save({"config": asdict(model.cfg), "state_dict": state}, path)


def repeated_tokens(
    batch: int, seq_len: int, d_vocab: int, generator: torch.Generator | None = None
) -> Int[Tensor, "batch 2*seq_len+1"]:
    """[BOS, r_1 .. r_T, r_1 .. r_T] with T = seq_len random tokens drawn from 1 .. d_vocab - 1."""
    r = torch.randint(1, d_vocab, (batch, seq_len), generator=generator)
    bos = torch.full((batch, 1), BOS, dtype=torch.long)
    return torch.cat([bos, r, r], dim=1)


def component_labels(cfg: AttnOnlyConfig) -> list[str]:
    """Names of `direct_logit_attribution`'s components, in its order."""
    labels = ["embed", "pos_embed"]
    for layer in range(cfg.n_layers):
        labels += [f"L{layer}H{head}" for head in range(cfg.n_heads)] + [f"L{layer} b_O"]
    return labels + ["bias"]


# -- hooks and the cache -------------------------------------------------------------------------


def run_with_cache(
    model: nn.Module, tokens: Int[Tensor, "b s"], names: Sequence[str] | None = None
) -> tuple[Float[Tensor, "b s v"], dict[str, Tensor]]:
    """Run `model(tokens)` once without gradients; return the logits and a cache of activations.

    The cache maps the name of every `HookPoint` of the model (or only those in `names`) to
    the tensor that went through it, detached. Attach one forward hook per hook point and remove
    them all before returning, even when the forward pass raises (try / finally).
    """
    # BEGIN SOLUTION
    cache: dict[str, Tensor] = {}

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            cache[name] = output.detach()

        return hook

    wanted = None if names is None else set(names)
    handles = [
        module.register_forward_hook(hook_for(name))
        for name, module in model.named_modules()
        if isinstance(module, HookPoint) and (wanted is None or name in wanted)
    ]
    try:
        with torch.no_grad():
            logits = model(tokens)
    finally:
        for handle in handles:
            handle.remove()
    return logits, cache
    # END SOLUTION


# -- GPT-2 and the logit lens ---------------------------------------------------------------------


def gpt2_residual_stream(
    model: nn.Module, input_ids: Int[Tensor, "b s"]
) -> Float[Tensor, "layer_plus_1 b s d"]:
    """The residual stream of a transformers `GPT2LMHeadModel` before each block and before `ln_f`.

    Entry l < n_layer is the input of `model.transformer.h[l]`; entry n_layer is the input of
    `model.transformer.ln_f` (the last block's output, not yet normalized). Read them with
    forward *pre*-hooks (`register_forward_pre_hook(fn, with_kwargs=True)`: fn(module, args,
    kwargs) sees the inputs); remove every hook before returning.
    """
    # BEGIN SOLUTION
    transformer = model.transformer
    modules = [*transformer.h, transformer.ln_f]
    found: list[Tensor | None] = [None] * len(modules)

    def hook_for(i: int):
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            x = args[0] if args else kwargs["hidden_states"]
            found[i] = x.detach()

        return hook

    handles = [
        m.register_forward_pre_hook(hook_for(i), with_kwargs=True) for i, m in enumerate(modules)
    ]
    try:
        with torch.no_grad():
            model(input_ids)
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(found)  # (n_layer + 1, b, s, d)
    # END SOLUTION


def logit_lens(
    model: nn.Module, input_ids: Int[Tensor, "b s"]
) -> Float[Tensor, "layer_plus_1 b s v"]:
    """Decode every residual stream of GPT-2 as if it were the last: lm_head(ln_f(resid_l)).

    Entry n_layer equals the model's logits; the earlier entries show what the model "would say"
    after l blocks.
    """
    # BEGIN SOLUTION
    resid = gpt2_residual_stream(model, input_ids)  # (l + 1, b, s, d)
    with torch.no_grad():
        return model.lm_head(model.transformer.ln_f(resid))
    # END SOLUTION


# -- direct logit attribution ---------------------------------------------------------------------


def direct_logit_attribution(
    model: AttnOnlyTransformer, cache: dict[str, Tensor]
) -> Float[Tensor, "component b s v"]:
    """Split the logits of `AttnOnlyTransformer` into the direct effect of each component.

    The final residual stream is a sum: embed + pos_embed + sum over layers of (sum_h z_h W_O[h]
    + b_O). With ln_final's scale sigma frozen at its value in the cache ("ln_final.hook_scale"),
    logits = sum_c ((c - mean(c)) / sigma * w_ln) W_U + (b_ln W_U + b_U) is linear in the
    components c. Return one slice per label of `component_labels(model.cfg)`: embed, pos_embed,
    each head of layer 0, layer 0's b_O, ..., and last the constant "bias" b_ln W_U + b_U
    (broadcast to b x s). The slices sum to the logits.
    """
    # BEGIN SOLUTION
    ln = model.ln_final
    b, s = cache["hook_embed"].shape[:2]
    parts = [cache["hook_embed"], cache["hook_pos_embed"].expand(b, s, -1)]  # (b, s, d) each
    for layer, block in enumerate(model.blocks):
        z = cache[f"blocks.{layer}.attn.hook_z"]  # (b, s, h, dh)
        heads = torch.einsum("bshe,hed->hbsd", z, block.attn.W_O)  # (h, b, s, d)
        parts += [*heads, block.attn.b_O.expand(b, s, -1)]
    resid = torch.stack(parts)  # (component, b, s, d)
    centred = resid - resid.mean(-1, keepdim=True)
    direct = (centred / cache["ln_final.hook_scale"] * ln.w) @ model.W_U  # (component, b, s, v)
    bias = (ln.b @ model.W_U + model.b_U).expand(1, b, s, -1)
    return torch.cat([direct, bias]).detach()
    # END SOLUTION


# -- loss on repeated tokens ----------------------------------------------------------------------


def per_token_loss(
    logits: Float[Tensor, "b s v"], tokens: Int[Tensor, "b s"]
) -> Float[Tensor, "b s_minus_1"]:
    """Cross-entropy of each next-token prediction: entry i is -log p(tokens[:, i + 1] | <= i)."""
    # BEGIN SOLUTION
    log_probs = logits[:, :-1].log_softmax(-1)  # the last position predicts nothing we know
    return -log_probs.gather(-1, tokens[:, 1:, None])[..., 0]
    # END SOLUTION


# -- head detectors -------------------------------------------------------------------------------


def previous_token_score(pattern: Float[Tensor, "b h q k"]) -> Float[Tensor, " h"]:
    """Mean attention from each query i >= 1 to key i - 1, over the batch and those queries."""
    # BEGIN SOLUTION
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean((0, -1))  # (b, h, s - 1) -> (h,)
    # END SOLUTION


def first_token_score(pattern: Float[Tensor, "b h q k"]) -> Float[Tensor, " h"]:
    """Mean attention from every query to key 0 (the BOS token), over the batch and queries."""
    # BEGIN SOLUTION
    return pattern[..., 0].mean((0, -1))
    # END SOLUTION


def current_token_score(pattern: Float[Tensor, "b h q k"]) -> Float[Tensor, " h"]:
    """Mean attention from every query i to itself (key i), over the batch and queries."""
    # BEGIN SOLUTION
    return pattern.diagonal(dim1=-2, dim2=-1).mean((0, -1))
    # END SOLUTION


def induction_score(pattern: Float[Tensor, "b h q k"], seq_len: int) -> Float[Tensor, " h"]:
    """How much each head attends like an induction head on [BOS, r_1..r_T, r_1..r_T], T = seq_len.

    The query at position i of the second copy (i = T + 1 .. 2T) holds the token seen before at
    position i - T; an induction head attends to the token after that one, key i - T + 1. The
    score is the mean of pattern[:, h, i, i - T + 1] over the batch and those T queries.
    """
    # BEGIN SOLUTION
    stripe = pattern.diagonal(offset=-(seq_len - 1), dim1=-2, dim2=-1)  # queries T-1 .. 2T
    return stripe[..., -seq_len:].mean((0, -1))  # keep queries T+1 .. 2T
    # END SOLUTION


def detect_heads(
    model: AttnOnlyTransformer,
    tokens: Int[Tensor, "b s"],
    score: Callable[[Tensor], Tensor],
    threshold: float = 0.5,
) -> list[tuple[int, int]]:
    """The heads (layer, head) whose `score(pattern)` on `tokens` is at least `threshold`.

    Cache every layer's "blocks.{l}.attn.hook_pattern" in one run, score each layer's pattern,
    and list the heads in order of layer, then head.
    """
    # BEGIN SOLUTION
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    _, cache = run_with_cache(model, tokens, names)
    return [
        (layer, head)
        for layer, name in enumerate(names)
        for head, value in enumerate(score(cache[name]).tolist())
        if value >= threshold
    ]
    # END SOLUTION


# -- ablation -------------------------------------------------------------------------------------


def ablate_head(
    model: AttnOnlyTransformer,
    tokens: Int[Tensor, "b s"],
    layer: int,
    head: int,
    kind: str = "zero",
) -> Float[Tensor, "b s v"]:
    """The logits with one head knocked out: its z (hook "blocks.{layer}.attn.hook_z") replaced.

    kind "zero": z of that head set to 0. kind "mean": z of that head replaced at each position by
    its mean over the batch (computed on these same tokens, in a first clean run). A forward
    hook that returns a tensor replaces the module's output; edit a copy, not the input, and
    remove the hook before returning.
    """
    # BEGIN SOLUTION
    if kind not in ("zero", "mean"):
        raise ValueError(f"kind must be 'zero' or 'mean', not {kind!r}")
    name = f"blocks.{layer}.attn.hook_z"
    replacement = torch.zeros(())
    if kind == "mean":
        _, cache = run_with_cache(model, tokens, [name])
        replacement = cache[name][:, :, head].mean(0)  # (s, dh), broadcast over the batch

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], z: Tensor) -> Tensor:
        z = z.clone()
        z[:, :, head] = replacement
        return z

    handle = model.get_submodule(name).register_forward_hook(hook)
    try:
        with torch.no_grad():
            return model(tokens)
    finally:
        handle.remove()
    # END SOLUTION


# -- circuits -------------------------------------------------------------------------------------


class FactoredMatrix:
    """M = A @ B kept as its factors A (m, r) and B (r, n), r small: low-rank and cheap.

    A head's QK circuit W_Q W_K^T and OV circuit W_V W_O have rank d_head << d_model; the full
    (d_vocab, d_vocab) circuits are products of several factors. Never form M unless asked (`AB`).
    """

    def __init__(self, A: Float[Tensor, "m r"], B: Float[Tensor, "r n"]):
        if A.shape[-1] != B.shape[-2]:
            raise ValueError(f"inner dimensions differ: A {tuple(A.shape)}, B {tuple(B.shape)}")
        self.A, self.B = A, B

    @property
    def shape(self) -> tuple[int, int]:
        return (self.A.shape[-2], self.B.shape[-1])

    @property
    def AB(self) -> Float[Tensor, "m n"]:
        """The full matrix."""
        return self.A @ self.B

    @property
    def T(self) -> FactoredMatrix:
        return FactoredMatrix(self.B.transpose(-1, -2), self.A.transpose(-1, -2))

    def __matmul__(self, other: Tensor | FactoredMatrix) -> FactoredMatrix:
        """M @ other, still factored: the new inner dimension stays r (fold `other` into B)."""
        # BEGIN SOLUTION
        if isinstance(other, FactoredMatrix):
            return FactoredMatrix(self.A, (self.B @ other.A) @ other.B)
        return FactoredMatrix(self.A, self.B @ other)
        # END SOLUTION

    def __rmatmul__(self, other: Tensor) -> FactoredMatrix:
        """other @ M, still factored: fold `other` into A."""
        # BEGIN SOLUTION
        return FactoredMatrix(other @ self.A, self.B)
        # END SOLUTION

    def norm(self) -> Tensor:
        """The Frobenius norm ||AB||_F without forming AB: ||M||_F^2 = trace((A^T A)(B B^T))."""
        # BEGIN SOLUTION
        return ((self.A.mT @ self.A) * (self.B @ self.B.mT)).sum().sqrt()  # both (r, r), symmetric
        # END SOLUTION

    def singular_values(self) -> Float[Tensor, " r"]:
        """The r largest singular values of AB, descending, from r x r matrices only.

        With A = Q_A R_A and B^T = Q_B R_B (reduced QR), AB = Q_A (R_A R_B^T) Q_B^T and the Q's
        have orthonormal columns, so AB has the singular values of the r x r matrix R_A R_B^T.
        """
        # BEGIN SOLUTION
        _, R_A = torch.linalg.qr(self.A)  # (r, r)
        _, R_B = torch.linalg.qr(self.B.mT)  # (r, r)
        return torch.linalg.svdvals(R_A @ R_B.mT)
        # END SOLUTION


def qk_circuit(model: AttnOnlyTransformer, layer: int, head: int) -> FactoredMatrix:
    """The full QK circuit W_E W_Q[h] W_K[h]^T W_E^T, (d_vocab, d_vocab): entry (i, j) is the
    attention score (before the 1/sqrt(d_head) scaling, ignoring positions and biases) from a
    query token i to a key token j, for a head that reads the token embeddings directly."""
    # BEGIN SOLUTION
    attn = model.blocks[layer].attn
    return FactoredMatrix(model.W_E @ attn.W_Q[head], (model.W_E @ attn.W_K[head]).T)
    # END SOLUTION


def ov_circuit(model: AttnOnlyTransformer, layer: int, head: int) -> FactoredMatrix:
    """The full OV circuit W_E W_V[h] W_O[h] W_U, (d_vocab, d_vocab): row j is the direct effect
    on the logits of attending to token j (ignoring ln_final and the biases). A copying head has
    a large diagonal."""
    # BEGIN SOLUTION
    attn = model.blocks[layer].attn
    return FactoredMatrix(model.W_E @ attn.W_V[head], attn.W_O[head] @ model.W_U)
    # END SOLUTION


def composition_score(W_A: Tensor | FactoredMatrix, W_B: Tensor | FactoredMatrix) -> Tensor:
    """||W_A W_B||_F / (||W_A||_F ||W_B||_F): how much of what W_A writes W_B reads (<= 1)."""
    # BEGIN SOLUTION
    A = W_A if isinstance(W_A, FactoredMatrix) else FactoredMatrix(W_A, torch.eye(W_A.shape[-1]))
    return (A @ W_B).norm() / (A.norm() * _norm(W_B))
    # END SOLUTION


def _norm(W: Tensor | FactoredMatrix) -> Tensor:
    return W.norm() if isinstance(W, FactoredMatrix) else torch.linalg.matrix_norm(W)


def composition_scores(model: AttnOnlyTransformer, kind: str) -> Float[Tensor, "h0 h1"]:
    """Scores between every head of layer 0 (rows) and every head of layer 1 (columns).

    With W_OV = W_V W_O and W_QK = W_Q W_K^T (both d_model x d_model, acting on row vectors):
    kind "Q": composition_score(W_OV[0, i], W_QK[1, j]) (layer 0 writes what layer 1's queries
    read); "K": composition_score(W_OV[0, i], W_QK[1, j]^T) (what its keys read); "V":
    composition_score(W_OV[0, i], W_OV[1, j]).
    """
    # BEGIN SOLUTION
    a0, a1 = model.blocks[0].attn, model.blocks[1].attn
    ov0 = [FactoredMatrix(a0.W_V[i], a0.W_O[i]) for i in range(model.cfg.n_heads)]
    readers = {
        "Q": [FactoredMatrix(a1.W_Q[j], a1.W_K[j].T) for j in range(model.cfg.n_heads)],
        "K": [FactoredMatrix(a1.W_K[j], a1.W_Q[j].T) for j in range(model.cfg.n_heads)],
        "V": [FactoredMatrix(a1.W_V[j], a1.W_O[j]) for j in range(model.cfg.n_heads)],
    }
    if kind not in readers:
        raise ValueError(f"kind must be 'Q', 'K' or 'V', not {kind!r}")
    with torch.no_grad():
        return torch.stack(
            [torch.stack([composition_score(a, b) for b in readers[kind]]) for a in ov0]
        )
    # END SOLUTION
