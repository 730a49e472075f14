"""Reference computations for the w3d5_rl_lm graders, written from the definitions (loops over
positions and a term-by-term GAE sum), sharing nothing with the vectorized code you write."""

from __future__ import annotations

import torch
from torch.distributions import Categorical


def tiny_gpt2(seed: int = 0, vocab_size: int = 23, n_embd: int = 16):
    """A tiny random GPT-2 (2 layers, no dropout) for the fast tests."""
    from transformers import GPT2Config, GPT2LMHeadModel  # slow to import: only when needed

    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=vocab_size,
        n_positions=32,
        n_embd=n_embd,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(cfg).eval()


def direct_logprobs(logits: torch.Tensor, tokens: torch.Tensor, prefix_len: int) -> torch.Tensor:
    """log p(tokens[:, t] | tokens[:, :t]) one position at a time, with torch's Categorical."""
    cols = [
        Categorical(logits=logits[:, t - 1].double()).log_prob(tokens[:, t])
        for t in range(prefix_len, tokens.shape[1])
    ]
    return torch.stack(cols, dim=1)


def direct_gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lam: float):
    """A_t = sum_{l >= 0} (gamma lam)^l delta_{t+l} up to the last token, V after it 0."""
    b, g = rewards.shape
    adv = torch.zeros(b, g, dtype=torch.float64)
    for i in range(b):
        for t in range(g):
            total, factor = 0.0, 1.0
            for k in range(t, g):
                next_v = float(values[i, k + 1]) if k + 1 < g else 0.0
                delta = float(rewards[i, k]) + gamma * next_v - float(values[i, k])
                total += factor * delta
                factor *= gamma * lam
            adv[i, t] = total
    return adv


def direct_ppo_loss(logits, values, mb, prefix_len, clip_coef, vf_coef, ent_coef):
    """PPO's loss on a minibatch from its definition, with the logits and values at every
    position given (b, s, V) and (b, s)."""
    new_logprobs = direct_logprobs(logits, mb.tokens, prefix_len).float()
    new_values = torch.stack(
        [values[:, t - 1] for t in range(prefix_len, mb.tokens.shape[1])], dim=1
    )
    a = mb.advantages
    adv = (a - a.mean()) / (a.std() + 1e-8)
    ratio = (new_logprobs - mb.logprobs).exp()
    surrogate = torch.min(ratio * adv, ratio.clamp(1 - clip_coef, 1 + clip_coef) * adv)
    pg_loss = -surrogate.mean()
    v_clip = mb.values + (new_values - mb.values).clamp(-clip_coef, clip_coef)
    v_loss = 0.5 * torch.max((new_values - mb.returns) ** 2, (v_clip - mb.returns) ** 2).mean()
    ents = [
        Categorical(logits=logits[:, t - 1]).entropy()
        for t in range(prefix_len, mb.tokens.shape[1])
    ]
    entropy = torch.stack(ents, dim=1).mean()
    return pg_loss + vf_coef * v_loss - ent_coef * entropy, pg_loss, v_loss, entropy


def flat_parameters(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for _, p in sorted(model.named_parameters())])


class Policy(torch.nn.Module):
    """A stand-in for TransformerWithValueHead with the same interface (`base`, `value_head`,
    forward -> (logits, values)), so that the graders of later exercises do not depend on yours."""

    def __init__(self, base):
        super().__init__()
        d = base.config.n_embd
        self.base = base
        self.value_head = torch.nn.Sequential(
            torch.nn.Linear(d, 4 * d), torch.nn.ReLU(), torch.nn.Linear(4 * d, 1)
        )

    def forward(self, input_ids: torch.Tensor):
        out = self.base(input_ids, output_hidden_states=True)
        return out.logits, self.value_head(out.hidden_states[-1])[..., 0]
