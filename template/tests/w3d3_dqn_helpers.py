"""Test fixtures for the w3d3_dqn graders: an environment whose observations say where they come
from, a buffer that records what it is given, and a tabular Q-network whose gradient shows which
Q-values a loss touched."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn


class CounterEnv(gym.Env):
    """Observation [episode, t, 0]: which episode of this copy, and the step within it.

    Episodes last `length` steps. Even-numbered episodes end by termination, odd-numbered ones by
    truncation (a time limit), so a test can tell which flag a stored transition carries. The
    reward is 10 * episode + t + action, so rewards say which step they came from."""

    observation_space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    action_space = spaces.Discrete(3)

    def __init__(self, length: int):
        self.length = length
        self.episode = -1

    def _obs(self) -> np.ndarray:
        return np.array([self.episode, self.t, 0.0], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        reward = 10.0 * self.episode + self.t + int(action)
        self.t += 1
        over = self.t == self.length
        terminated = over and self.episode % 2 == 0
        truncated = over and self.episode % 2 == 1
        return self._obs(), reward, terminated, truncated, {}


def counter_envs(lengths: tuple[int, ...]) -> gym.vector.SyncVectorEnv:
    """One CounterEnv per length, SAME_STEP autoreset, as the day's make_vector_env builds."""
    return gym.vector.SyncVectorEnv(
        [lambda n=n: CounterEnv(n) for n in lengths],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


class RecordingBuffer:
    """Stands in for a ReplayBuffer: keeps every `add` call's arguments as float64 tensors."""

    def __init__(self):
        self.calls: list[dict[str, torch.Tensor]] = []

    def add(self, obs, actions, rewards, next_obs, terminated) -> None:
        given = dict(
            obs=obs, actions=actions, rewards=rewards, next_obs=next_obs, terminated=terminated
        )
        self.calls.append(
            {k: torch.as_tensor(np.asarray(v)).to(torch.float64) for k, v in given.items()}
        )

    def stacked(self, name: str) -> torch.Tensor:
        return torch.cat([c[name] for c in self.calls])


class TabularQ(nn.Module):
    """Q(s, a) = table[s, a] for one-hot observations s: the table's gradient shows which
    Q-values a loss used."""

    def __init__(self, table: torch.Tensor, requires_grad: bool = True):
        super().__init__()
        self.table = nn.Parameter(table.clone(), requires_grad=requires_grad)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs @ self.table  # (B, S) @ (S, A) -> (B, A)


def mlp(obs_dim: int, num_actions: int, seed: int) -> nn.Sequential:
    """A small fixed MLP, independent of the day's QNetwork."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(obs_dim, 16), nn.ReLU(), nn.Linear(16, num_actions))
