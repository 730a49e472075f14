"""Day w3d5_rl_lm: reinforcement learning on a language model (RLHF's machinery, toy reward).

A language model is a policy: the state is the text so far, an action is the next token, and an
episode is one completion of a prompt. We fine-tune a small GPT-2 with PPO (Schulman et al. 2017)
the way Ziegler et al. 2019 ("Fine-Tuning Language Models from Human Preferences") and Hugging
Face's TRL do it: a value head on the transformer, rollouts sampled from the current policy, a
scalar score for each completion, a per-token KL penalty to a frozen copy of the model we started
from, token-level GAE, clipped PPO updates, and an adaptive KL coefficient. The score here is a
toy reward (how often a character appears), so the whole loop runs on a CPU in seconds.

The model (given): `load_pretrained()` is a character-level `GPT2LMHeadModel` (2 layers,
n_embd 64) pretrained on Debian's `fortunes` texts by `w3d5_rl_lm_assets/train_char_gpt2.py`
(fixed seed, ~250 KB). `CharTokenizer` maps characters to ids; `sample` is the sampler.

Shapes: b sequences in a batch, s = p + g tokens per sequence (p prompt tokens, BOS included, then
g generated ones), V the vocabulary, d the model width. Read docs/w3d5_rl_lm.md for the maths.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

if TYPE_CHECKING:  # transformers is imported where it is used: it takes seconds to import
    from transformers import GPT2Config, GPT2LMHeadModel

ASSETS = Path(__file__).resolve().parent / "w3d5_rl_lm_assets"

# -- the tokenizer, the model and the sampler (given) -------------------------------------------

BOS = "\x02"  # id 0: starts every text (a fortune in pretraining, a prompt here)
CHARS = BOS + "\n !\"'(),-.:;?0123456789abcdefghijklmnopqrstuvwxyz"


class CharTokenizer:
    """One token per character of `CHARS`; text is lower-cased and unknown characters become
    spaces. `encode` puts BOS first; `decode` drops it."""

    def __init__(self, chars: str = CHARS):
        self.chars = chars
        self.ids = {c: i for i, c in enumerate(chars)}
        self.bos_token_id = 0

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def clean(self, text: str) -> str:
        return "".join(c if c in self.ids else " " for c in text.lower())

    def encode(self, text: str, bos: bool = True) -> list[int]:
        return [self.bos_token_id] * bos + [self.ids[c] for c in self.clean(text)]

    def decode(self, ids: list[int] | Tensor) -> str:
        ids = ids.tolist() if isinstance(ids, Tensor) else ids
        return "".join(self.chars[i] for i in ids if i != self.bos_token_id)


def char_gpt2_config(vocab_size: int = len(CHARS)) -> GPT2Config:
    """The pretrained model's shape: 2 layers, 4 heads, width 64, context 64, no dropout (so
    train and eval mode compute the same thing, and the graders are deterministic)."""
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=vocab_size,
        n_positions=64,
        n_embd=64,
        n_layer=2,
        n_head=4,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )


def save_pretrained(model: GPT2LMHeadModel, path: Path | str) -> None:
    """float16 weights without the LM head (tied to the token embedding) and the config."""
    state = {k: v.half() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    torch.save({"config": model.config.to_dict(), "state_dict": state}, path)


def load_pretrained(path: Path | str = ASSETS / "char_gpt2.pt") -> GPT2LMHeadModel:
    """The small character-level GPT-2 trained by `w3d5_rl_lm_assets/train_char_gpt2.py`."""
    from transformers import GPT2Config, GPT2LMHeadModel

    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = GPT2LMHeadModel(GPT2Config.from_dict(blob["config"]))
    state = {k: v.float() for k, v in blob["state_dict"].items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert set(missing) <= {"lm_head.weight"} and not unexpected, (missing, unexpected)
    model.tie_weights()
    return model.eval()


@torch.no_grad()
def sample(
    model: GPT2LMHeadModel,
    input_ids: Int[Tensor, "b p"],
    gen_len: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Int[Tensor, "b p+g"]:
    """Append `gen_len` tokens to each row, each drawn from softmax(logits / temperature) of the
    model at the last position (with a KV cache). Always exactly `gen_len` tokens: no stopping."""
    out = model(input_ids, use_cache=True)
    tokens = [input_ids]
    for i in range(gen_len):
        probs = (out.logits[:, -1].float() / temperature).softmax(-1)  # (b, V)
        next_token = torch.multinomial(probs, 1, generator=generator)  # (b, 1)
        tokens.append(next_token)
        if i + 1 < gen_len:  # transformers 5 names the cache `cache`, 4.x `past_key_values`
            kv = (
                {"cache": out.cache}
                if hasattr(out, "cache")
                else {"past_key_values": out.past_key_values}
            )
            out = model(next_token, use_cache=True, **kv)
    return torch.cat(tokens, dim=1)


# -- the policy: a transformer with a value head ------------------------------------------------


class TransformerWithValueHead(nn.Module):
    """The policy and its critic in one network: `self.base` (a `GPT2LMHeadModel`) gives the
    next-token logits, and `self.value_head`, an MLP

        nn.Sequential(nn.Linear(d, 4 d), nn.ReLU(), nn.Linear(4 d, 1)),

    reads the final residual stream (after the last layer norm `ln_f`, the same vectors the
    unembedding reads) and gives one value per position: V(tokens[:, : t + 1]).
    """

    def __init__(self, base: GPT2LMHeadModel):
        super().__init__()
        raise NotImplementedError("TransformerWithValueHead.__init__: see docs/w3d5_rl_lm.md#transformerwithvaluehead")

    def forward(
        self, input_ids: Int[Tensor, "b s"]
    ) -> tuple[Float[Tensor, "b s V"], Float[Tensor, "b s"]]:
        """(logits, values) for every position, in one forward pass of the base model."""
        raise NotImplementedError("TransformerWithValueHead.forward: see docs/w3d5_rl_lm.md#transformerwithvaluehead")


def make_reference_model(policy: TransformerWithValueHead) -> GPT2LMHeadModel:
    """A frozen copy of the policy's language model, as it is now: the reference the KL penalty
    measures against. A separate copy (training the policy must not move it), in eval mode, with
    no parameter requiring gradients."""
    raise NotImplementedError("make_reference_model: see docs/w3d5_rl_lm.md#make_reference_model")


# -- rollouts: samples, rewards, log-probabilities ----------------------------------------------


def get_samples(
    model: GPT2LMHeadModel,
    tokenizer: CharTokenizer,
    prompt: str,
    batch_size: int,
    gen_len: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[Int[Tensor, "b p+g"], list[str]]:
    """`batch_size` completions of one prompt: encode it (BOS first), repeat it into a batch of
    shape (batch_size, p), call `sample` once, and decode each row's generated part (the last
    `gen_len` tokens). Returns the token ids (prompt included) and the completions' texts."""
    raise NotImplementedError("get_samples: see docs/w3d5_rl_lm.md#get_samples")


def reward_char_frequency(completions: list[str], char: str) -> Float[Tensor, " b"]:
    """The toy reward: the fraction of each completion's characters that are `char` (0 for an
    empty completion), as a float32 tensor."""
    raise NotImplementedError("reward_char_frequency: see docs/w3d5_rl_lm.md#reward_char_frequency")


def normalize_reward(reward: Float[Tensor, " b"], eps: float = 1e-5) -> Float[Tensor, " b"]:
    """(r - mean r) / (std r + eps) over the batch, torch's default (unbiased) std: the score's
    scale then stays the same as the reward improves, so one KL coefficient fits the whole run."""
    raise NotImplementedError("normalize_reward: see docs/w3d5_rl_lm.md#normalize_reward")


def get_logprobs(
    logits: Float[Tensor, "b s V"], tokens: Int[Tensor, "b s"], prefix_len: int
) -> Float[Tensor, "b s-prefix_len"]:
    """log pi(tokens[:, t] | tokens[:, :t]) for the generated positions t = prefix_len .. s - 1.

    The logits at position t predict token t + 1, so token t's log-probability comes from the
    logits at t - 1. Use `log_softmax` (log of softmax underflows to -inf for unlikely tokens).
    """
    raise NotImplementedError("get_logprobs: see docs/w3d5_rl_lm.md#get_logprobs")


def kl_penalized_rewards(
    scores: Float[Tensor, " b"],
    logprobs: Float[Tensor, "b g"],
    ref_logprobs: Float[Tensor, "b g"],
    kl_coef: float,
) -> Float[Tensor, "b g"]:
    """Per-token rewards: every generated token pays beta times its share of the KL estimate,

        r_t = -beta (log pi(x_t | x_<t) - log pi_ref(x_t | x_<t)),   beta = kl_coef,

    and the completion's score is added at the last token only (the episode's end), so that
    sum_t r_t = score - beta * (an estimate of KL(pi || pi_ref) on this sample).
    """
    raise NotImplementedError("kl_penalized_rewards: see docs/w3d5_rl_lm.md#kl_penalized_rewards")


def compute_gae(
    rewards: Float[Tensor, "b g"], values: Float[Tensor, "b g"], gamma: float, gae_lambda: float
) -> Float[Tensor, "b g"]:
    """Token-level generalized advantage estimates. Token t is an action taken in the state
    x_<t whose value is values[:, t]; the episode ends after the last token (its next value is 0):

        delta_t = r_t + gamma V_{t+1} - V_t   (V_g = 0)
        A_t = delta_t + gamma lambda A_{t+1}   (A_g = 0)
    """
    raise NotImplementedError("compute_gae: see docs/w3d5_rl_lm.md#compute_gae")


@dataclass
class RLHFArgs:
    """One run of PPO on the toy reward. The defaults run in a few seconds per step on a CPU."""

    prompt: str = "the "
    reward_char: str = "e"
    batch_size: int = 32
    gen_len: int = 16
    temperature: float = 1.0
    n_steps: int = 20  # rollouts (each followed by one `ppo_update`)
    learning_rate: float = 3e-4
    init_kl_coef: float = 0.3  # beta
    adaptive_kl: bool = False
    target_kl: float = 1.0  # of the adaptive controller: KL(pi || pi_ref) per completion
    kl_horizon: int = 100
    normalize_reward: bool = True
    gamma: float = 1.0
    gae_lambda: float = 0.95
    update_epochs: int = 4
    num_minibatches: int = 4
    clip_coef: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0

    @property
    def prefix_len(self) -> int:
        return len(CharTokenizer().encode(self.prompt))

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches


@dataclass
class Memory:
    """One rollout, b completions of g tokens: what the PPO updates need. `scores` are the raw
    rewards (before normalization), `kl` the mean over the batch of sum_t (log pi - log pi_ref)."""

    tokens: Int[Tensor, "b s"]
    logprobs: Float[Tensor, "b g"]  # log pi_old of each generated token
    ref_logprobs: Float[Tensor, "b g"]
    values: Float[Tensor, "b g"]  # V_old of the state each generated token was chosen in
    scores: Float[Tensor, " b"]
    rewards: Float[Tensor, "b g"]  # per token: KL penalty, plus the (normalized) score at the end
    advantages: Float[Tensor, "b g"]
    returns: Float[Tensor, "b g"]  # advantages + values: the critic's targets

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, idx: Int[Tensor, " m"]) -> Memory:
        return Memory(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @property
    def kl(self) -> float:
        return float((self.logprobs - self.ref_logprobs).sum(-1).mean())


def rollout(
    policy: TransformerWithValueHead,
    ref_model: GPT2LMHeadModel,
    tokenizer: CharTokenizer,
    args: RLHFArgs,
    kl_coef: float,
    generator: torch.Generator | None = None,
) -> tuple[Memory, list[str]]:
    """Sample `args.batch_size` completions of `args.prompt` from the policy (`get_samples` on
    `policy.base`, `args.gen_len` tokens at `args.temperature`), then, without gradients:

    - the policy's logits and values on the whole sequences, the reference model's logits;
    - log-probabilities of the generated tokens under both (`get_logprobs`), and the values of
      the states those tokens were chosen in (positions p - 1 .. s - 2, as for the logits);
    - scores `reward_char_frequency(completions, args.reward_char)`, normalized if
      `args.normalize_reward`; `kl_penalized_rewards` with `kl_coef`; `compute_gae`; returns.

    Returns the memory (raw scores in it) and the completions.
    """
    raise NotImplementedError("rollout: see docs/w3d5_rl_lm.md#rollout")


# -- PPO on tokens ------------------------------------------------------------------------------


def ppo_loss(
    policy: TransformerWithValueHead, mb: Memory, args: RLHFArgs
) -> tuple[Float[Tensor, ""], dict[str, float]]:
    """PPO's loss on a minibatch of completions, every generated token one sample:

        r = exp(log pi - log pi_old),  A normalized over the minibatch's tokens ((A - mean) / (std + 1e-8))
        L_clip = -mean[ min(r A, clip(r, 1 - eps, 1 + eps) A) ]
        V_clip = V_old + clip(V - V_old, -eps, eps),  L_V = 0.5 mean[ max((V - R)^2, (V_clip - R)^2) ]
        loss = L_clip + vf_coef L_V - ent_coef * mean entropy

    with eps = `args.clip_coef` for both, log pi and V from one forward pass of the policy on
    `mb.tokens`, taken at the same positions as in `rollout`, and the entropy of the policy's
    next-token distribution there. Statistics: "pg_loss", "v_loss", "entropy", "approx_kl"
    (mean((r - 1) - log r)) and "clipfrac" (the fraction of tokens with |r - 1| > eps).
    """
    raise NotImplementedError("ppo_loss: see docs/w3d5_rl_lm.md#ppo_loss")


def ppo_update(
    policy: TransformerWithValueHead,
    optimizer: torch.optim.Optimizer,
    memory: Memory,
    args: RLHFArgs,
    generator: torch.Generator,
) -> dict[str, float]:
    """`args.update_epochs` passes over the rollout's completions in minibatches of
    `args.minibatch_size`: each epoch `perm = torch.randperm(len(memory), generator=generator)`
    and the consecutive slices `perm[start : start + minibatch_size]`; for each, `ppo_loss`, zero
    the gradients, backward, clip the global gradient norm to `args.max_grad_norm`, step.
    Returns the last minibatch's statistics."""
    raise NotImplementedError("ppo_update: see docs/w3d5_rl_lm.md#ppo_update")


class AdaptiveKLController:
    """Ziegler et al. 2019's proportional controller of beta, aiming at a KL of `target`:

        e = clip(KL / target - 1, -0.2, 0.2),   beta <- beta (1 + e n_steps / horizon)

    where KL is the measured KL(pi || pi_ref) and n_steps how many steps (here: rollouts) it was
    measured over. `self.value` is the current beta."""

    def __init__(self, init_kl_coef: float, target: float, horizon: int):
        self.value, self.target, self.horizon = init_kl_coef, target, horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        raise NotImplementedError("AdaptiveKLController.update: see docs/w3d5_rl_lm.md#adaptiveklcontroller")


def train_rlhf(
    args: RLHFArgs, base: GPT2LMHeadModel | None = None
) -> tuple[TransformerWithValueHead, GPT2LMHeadModel, list[dict[str, float]]]:
    """PPO on the toy reward, `args.n_steps` rollouts, from `base` (default `load_pretrained()`).

    Seeding: `torch.manual_seed(args.seed)` (given, after loading the base) before building the
    policy (the value head's init), one `torch.Generator().manual_seed(args.seed)` for sampling
    and another, seeded the same, for the minibatch permutations. The reference model is made from the policy before any update;
    Adam with `args.learning_rate` over all the policy's parameters; beta from an
    `AdaptiveKLController(args.init_kl_coef, args.target_kl, args.kl_horizon)`, updated after each
    rollout with the memory's `kl` (n_steps 1) when `args.adaptive_kl`. Each step appends
    {"reward": mean raw score, "kl": memory.kl, "kl_coef": the beta the rollout used} to the
    history. Returns the policy, the reference model and the history.
    """
    base = load_pretrained() if base is None else base
    torch.manual_seed(args.seed)
    tokenizer = CharTokenizer()
    raise NotImplementedError("train_rlhf: see docs/w3d5_rl_lm.md#train_rlhf")
