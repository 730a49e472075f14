"""Reference computations and test environments for the w3d4_policy_gradient graders.

The GAE reference here is the definition, summed term by term (quadratic in T): slow, but it
shares nothing with the backward recursion you write.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces


def random_rollout(T: int, N: int, seed: int, p_term: float = 0.15, p_trunc: float = 0.1):
    """Random rewards, values and episode ends (terminations and truncations) for T x N steps."""
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(T, N, generator=g, dtype=torch.float64)
    values = torch.randn(T, N, generator=g, dtype=torch.float64)
    next_values = torch.randn(T, N, generator=g, dtype=torch.float64)
    u = torch.rand(T, N, generator=g, dtype=torch.float64)
    terminated = u < p_term
    truncated = (u >= p_term) & (u < p_term + p_trunc)
    # Inside an episode V(s_{t+1}) is the next step's V(s_t): only ends and the last row differ.
    done = terminated | truncated
    next_values[:-1] = torch.where(done[:-1], next_values[:-1], values[1:])
    return rewards, values, next_values, terminated, truncated


def direct_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """A_t = sum_{l=0}^{L} (gamma lam)^l delta_{t+l}, where t + L is the episode's last step in
    the rollout (a termination, a truncation, or the rollout's end)."""
    T, N = rewards.shape
    deltas = rewards + gamma * (~terminated).double() * next_values - values
    done = terminated | truncated
    adv = torch.zeros(T, N, dtype=torch.float64)
    for n in range(N):
        for t in range(T):
            total, factor = 0.0, 1.0
            for k in range(t, T):
                total += factor * float(deltas[k, n])
                if done[k, n]:
                    break
                factor *= gamma * lam
            adv[t, n] = total
    return adv


def direct_rewards_to_go(rewards, done, gamma):
    """Sum of discounted rewards from t to the end of t's episode (or of the rollout)."""
    T, N = rewards.shape
    out = torch.zeros(T, N, dtype=torch.float64)
    for n in range(N):
        for t in range(T):
            total, factor = 0.0, 1.0
            for k in range(t, T):
                total += factor * float(rewards[k, n])
                if done[k, n]:
                    break
                factor *= gamma
            out[t, n] = total
    return out


class Counter(gym.Env):
    """A test environment whose every step is predictable. Two actions; the observation is
    (t / 10, env id); reward = 10 * action + t after step t (1-based). Episodes of environment i
    last `length[i]` steps and then terminate (even i) or are truncated (odd i)."""

    lengths = (3, 2, 5, 4)

    def __init__(self, index: int):
        self.index = index
        self.length = self.lengths[index % len(self.lengths)]
        self.observation_space = spaces.Box(-100.0, 100.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)

    def _obs(self) -> np.ndarray:
        return np.array([self.t / 10, self.index], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        reward = 10.0 * int(action) + self.t
        end = self.t >= self.length
        terminated, truncated = end and self.index % 2 == 0, end and self.index % 2 == 1
        return self._obs(), reward, terminated, truncated, {}


def counter_envs(m, num_envs: int = 4) -> gym.vector.SyncVectorEnv:
    return gym.vector.SyncVectorEnv(
        [lambda i=i: m.make_env(lambda: Counter(i)) for i in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


def set_random_parameters(agent: torch.nn.Module, seed: int, scale: float = 0.5) -> None:
    """Fill the agent's parameters with seeded noise, by name: the same values whatever order
    the agent's constructor drew its own."""
    g = torch.Generator().manual_seed(seed)
    state = agent.state_dict()
    new = {k: scale * torch.randn(state[k].shape, generator=g) for k in sorted(state)}
    agent.load_state_dict(new)
