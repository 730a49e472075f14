"""Day w3d3_dqn: deep Q-learning (DQN) on probe environments, then CartPole-v1.

A Q-network Q(s, a) estimates the discounted return of taking action a in state s and acting
greedily afterwards. DQN (Mnih et al. 2013, "Playing Atari with Deep Reinforcement Learning";
Mnih et al. 2015, "Human-level control through deep reinforcement learning") trains it by
regression on the Bellman target y = r + gamma (1 - terminated) max_a' Q_target(s', a'), on
transitions drawn at random from a replay buffer, with a target network that is a periodic copy
of the online one. The training loop follows CleanRL's `dqn.py` (Huang et al. 2022).

You write the buffer, the network, the exploration schedule, epsilon-greedy action selection, the
target network, the loss, one environment step and the training loop. Given: six probe
environments whose Q-values are known exactly, the environment constructors (gymnasium 1.x
vector environments in SAME_STEP autoreset mode) and a greedy evaluation.
Read docs/w3d3_dqn.md first.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

# -- probe environments (given) ----------------------------------------------------------------
#
# Each probe isolates one part of the algorithm. The docs give their exact Q-values; a DQN that
# cannot learn them has a bug in the part that probe isolates.


class Probe1(gym.Env):
    """One action, one observation [0], reward +1, episode ends at once. Q(s, 0) = 1.

    Fails if the network cannot fit a constant, or the loss is broken."""

    observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 1.0, True, False, {}


class Probe2(gym.Env):
    """One action, observation -1 or +1 at random, reward = observation, episode ends at once.

    Q(s, 0) = s. Fails if the network ignores its input."""

    observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._obs = np.array([self.np_random.choice([-1.0, 1.0])], np.float32)
        return self._obs.copy(), {}

    def step(self, action):
        return self._obs.copy(), float(self._obs[0]), True, False, {}


class Probe3(gym.Env):
    """One action, two steps: observation [0], reward 0, then observation [1], reward 1, end.

    Q([0], 0) = gamma, Q([1], 0) = 1. Fails if discounting or bootstrapping is wrong."""

    observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self._t += 1
        if self._t == 1:
            return np.ones(1, np.float32), 0.0, False, False, {}
        return np.ones(1, np.float32), 1.0, True, False, {}


class Probe4(gym.Env):
    """Two actions, one observation [0]: action 0 gives reward -1, action 1 gives +1, then end.

    Q(s, 0) = -1, Q(s, 1) = +1. Fails if the loss picks the wrong action's Q-value."""

    observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 1.0 if int(action) == 1 else -1.0, True, False, {}


class Probe5(gym.Env):
    """Two actions, observation -1 or +1 at random: reward +1 for the action that matches the
    observation (0 for -1, 1 for +1), -1 otherwise, then end.

    Q(-1) = [1, -1], Q(+1) = [-1, 1]. Fails if the network cannot use observation and action
    together."""

    observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._obs = np.array([self.np_random.choice([-1.0, 1.0])], np.float32)
        return self._obs.copy(), {}

    def step(self, action):
        right = int(action) == int(self._obs[0] > 0)
        return self._obs.copy(), 1.0 if right else -1.0, True, False, {}


class ProbeTruncated(gym.Env):
    """One action, observation [0], reward +1 every step, never terminates: a time limit
    truncates every episode after `PROBE_TRUNCATED_STEPS` steps.

    Q(s, 0) = 1 / (1 - gamma): the agent cannot see the clock, and truncation is not the end of
    the task, so the target must bootstrap through it. Treating truncation as termination gives
    1 / (1 - gamma (1 - 1/T)) instead."""

    observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 1.0, False, False, {}


PROBE_TRUNCATED_STEPS = 4
PROBES = {
    "mlab/Probe1-v0": Probe1,
    "mlab/Probe2-v0": Probe2,
    "mlab/Probe3-v0": Probe3,
    "mlab/Probe4-v0": Probe4,
    "mlab/Probe5-v0": Probe5,
    "mlab/ProbeTruncated-v0": ProbeTruncated,
}
for _env_id, _cls in PROBES.items():
    if _env_id not in gym.registry:
        steps = PROBE_TRUNCATED_STEPS if _cls is ProbeTruncated else None
        gym.register(id=_env_id, entry_point=_cls, max_episode_steps=steps)


# -- environments and evaluation (given) -------------------------------------------------------


def make_env(env_id: str) -> gym.Env:
    """One environment that records each episode's return and length in `info["episode"]`."""
    return gym.wrappers.RecordEpisodeStatistics(gym.make(env_id))


def make_vector_env(env_id: str, num_envs: int) -> gym.vector.SyncVectorEnv:
    """`num_envs` copies stepped together, in SAME_STEP autoreset mode.

    When copy i's episode ends at a step, that same step already returns copy i's *reset*
    observation in `next_obs[i]`; the real last observation of the episode is in
    `infos["final_obs"][i]`, flagged by `infos["_final_obs"][i]`. Seed with `envs.reset(seed=s)`
    (copy i gets seed s + i)."""
    return gym.vector.SyncVectorEnv(
        [lambda: make_env(env_id) for _ in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


def completed_returns(infos: dict) -> list[float]:
    """Returns of the episodes that ended at this vector step (from RecordEpisodeStatistics)."""
    if "final_info" not in infos or "episode" not in infos["final_info"]:
        return []
    episode = infos["final_info"]["episode"]
    return [float(r) for r in episode["r"][episode["_r"]]]


@torch.no_grad()
def evaluate(q_network: nn.Module, env_id: str, num_episodes: int, seed: int) -> list[float]:
    """Undiscounted return of each of `num_episodes` greedy episodes (argmax_a Q(s, a))."""
    env = make_env(env_id)
    returns = []
    for episode in range(num_episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            q = q_network(torch.as_tensor(obs, dtype=torch.float32)[None])  # (1, num_actions)
            obs, reward, terminated, truncated, _ = env.step(int(q.argmax(-1)))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


# -- replay buffer -----------------------------------------------------------------------------


@dataclass
class ReplayBufferSamples:
    """A batch of B transitions (s, a, r, s', terminated), each field indexed by transition."""

    obs: Float[Tensor, " B *obs_shape"]
    actions: Int[Tensor, " B"]
    rewards: Float[Tensor, " B"]
    next_obs: Float[Tensor, " B *obs_shape"]
    terminated: Bool[Tensor, " B"]


class ReplayBuffer:
    """A circular buffer of the last `capacity` transitions.

    Transition number t (counting from 0 over the buffer's whole life) lives in slot
    t % capacity: once full, each new transition overwrites the oldest. `pos` is the next slot
    to write and `size` how many slots hold a transition. Sampling draws uniformly, with
    replacement, from the buffer's own generator, so a seed fixes the batches.
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], seed: int = 0):
        self.capacity = capacity
        self.obs = torch.zeros((capacity, *obs_shape))
        self.actions = torch.zeros(capacity, dtype=torch.int64)
        self.rewards = torch.zeros(capacity)
        self.next_obs = torch.zeros((capacity, *obs_shape))
        self.terminated = torch.zeros(capacity, dtype=torch.bool)
        self.pos = 0
        self.size = 0
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: Float[Tensor, " n *obs_shape"],
        actions: Int[Tensor, " n"],
        rewards: Float[Tensor, " n"],
        next_obs: Float[Tensor, " n *obs_shape"],
        terminated: Bool[Tensor, " n"],
    ) -> None:
        """Store n transitions (one per environment copy; n <= capacity), in order, wrapping
        around the end of the storage. Accepts tensors or NumPy arrays."""
        # BEGIN SOLUTION
        n = len(actions)
        slots = (self.pos + torch.arange(n)) % self.capacity  # (n,)
        self.obs[slots] = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
        self.actions[slots] = torch.as_tensor(np.asarray(actions), dtype=torch.int64)
        self.rewards[slots] = torch.as_tensor(np.asarray(rewards), dtype=torch.float32)
        self.next_obs[slots] = torch.as_tensor(np.asarray(next_obs), dtype=torch.float32)
        self.terminated[slots] = torch.as_tensor(np.asarray(terminated), dtype=torch.bool)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        # END SOLUTION

    def sample(self, batch_size: int) -> ReplayBufferSamples:
        """`batch_size` transitions drawn uniformly with replacement from the stored ones: the
        slots are `torch.randint(0, len(self), (batch_size,), generator=self.generator)`."""
        # BEGIN SOLUTION
        idx = torch.randint(0, self.size, (batch_size,), generator=self.generator)
        return ReplayBufferSamples(
            obs=self.obs[idx],
            actions=self.actions[idx],
            rewards=self.rewards[idx],
            next_obs=self.next_obs[idx],
            terminated=self.terminated[idx],
        )
        # END SOLUTION


# -- the Q-network and its target --------------------------------------------------------------


class QNetwork(nn.Module):
    """An MLP from observations to one Q-value per action: Linear, ReLU, ..., Linear.

    Hidden layers have `hidden_sizes` units each with a ReLU after them; the last Linear has no
    activation (Q-values can be any real number)."""

    def __init__(self, obs_dim: int, num_actions: int, hidden_sizes: tuple[int, ...] = (120, 84)):
        super().__init__()
        # BEGIN SOLUTION
        sizes = [obs_dim, *hidden_sizes]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes, sizes[1:], strict=False):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], num_actions))
        self.layers = nn.Sequential(*layers)
        # END SOLUTION

    def forward(self, obs: Float[Tensor, "B obs_dim"]) -> Float[Tensor, "B num_actions"]:
        # BEGIN SOLUTION
        return self.layers(obs)
        # END SOLUTION


def make_target_network(q_network: nn.Module) -> nn.Module:
    """A frozen copy of `q_network`: same weights in separate storage, `requires_grad` False.

    The target network gives the bootstrap term max_a' Q(s', a') a fixed value for many
    updates, so the regression target does not move with every gradient step."""
    # BEGIN SOLUTION
    target = copy.deepcopy(q_network)
    target.requires_grad_(False)
    return target
    # END SOLUTION


@torch.no_grad()
def update_target_network(target: nn.Module, online: nn.Module, tau: float = 1.0) -> None:
    """theta^- <- tau theta + (1 - tau) theta^-, in place, for every parameter.

    tau = 1 is DQN's hard update (copy every C steps); tau < 1 is a Polyak (soft) update. Write
    into the target's own tensors: never make them share storage with the online network."""
    # BEGIN SOLUTION
    for p_target, p_online in zip(target.parameters(), online.parameters(), strict=True):
        p_target.lerp_(p_online, tau)
    # END SOLUTION


# -- acting --------------------------------------------------------------------------------------


def linear_schedule(step: int, start_e: float, end_e: float, duration: int) -> float:
    """Epsilon at `step`: start_e at step 0, moving linearly to end_e at step `duration`, and
    end_e from then on. duration = 0 means end_e from the start."""
    # BEGIN SOLUTION
    if duration <= 0:
        return end_e
    return start_e + (end_e - start_e) * min(step / duration, 1.0)
    # END SOLUTION


@torch.no_grad()
def epsilon_greedy(
    q_network: nn.Module,
    obs: Float[Tensor, "n obs_dim"],
    epsilon: float,
    generator: torch.Generator,
) -> Int[Tensor, " n"]:
    """One action per environment copy: uniformly random with probability epsilon (a separate
    coin for each copy), else argmax_a Q(obs, a). All randomness from `generator`."""
    # BEGIN SOLUTION
    q = q_network(obs)  # (n, num_actions)
    n, num_actions = q.shape
    explore = torch.rand(n, generator=generator) < epsilon
    random_actions = torch.randint(0, num_actions, (n,), generator=generator)
    return torch.where(explore, random_actions, q.argmax(-1))
    # END SOLUTION


def collect_step(
    envs: gym.vector.VectorEnv,
    obs: np.ndarray,
    actions: np.ndarray,
    buffer: ReplayBuffer,
) -> tuple[np.ndarray, dict]:
    """Step every copy with `actions`, store the n transitions in `buffer`, return
    `(next_obs, infos)` where next_obs is what to act on next.

    In SAME_STEP autoreset mode a copy whose episode just ended already returns its reset
    observation: the transition's s' must be the real final one, `infos["final_obs"][i]`.
    Store `terminated`, not `truncated`: a time limit is not the end of the task, so a
    truncated transition still bootstraps from s'."""
    # BEGIN SOLUTION
    next_obs, rewards, terminated, truncated, infos = envs.step(actions)
    real_next_obs = next_obs.copy()
    if "_final_obs" in infos:
        for i in np.flatnonzero(infos["_final_obs"]):
            real_next_obs[i] = infos["final_obs"][i]
    buffer.add(obs, actions, rewards, real_next_obs, terminated)
    return next_obs, infos
    # END SOLUTION


# -- learning ----------------------------------------------------------------------------------


def dqn_loss(
    q_network: nn.Module,
    target_network: nn.Module,
    batch: ReplayBufferSamples,
    gamma: float,
) -> Float[Tensor, ""]:
    """Mean squared TD error over the batch.

    y = r + gamma * (1 - terminated) * max_a' Q_target(s', a'), computed without gradient;
    loss = mean over the batch of (Q(s, a) - y)^2, with Q(s, a) the online network's value of
    the action actually taken."""
    # BEGIN SOLUTION
    with torch.no_grad():
        next_q = target_network(batch.next_obs).max(dim=-1).values  # (B,)
        td_target = batch.rewards + gamma * next_q * (~batch.terminated).float()
    q_taken = q_network(batch.obs).gather(1, batch.actions[:, None]).squeeze(1)  # (B, 1) -> (B,)
    return F.mse_loss(q_taken, td_target)
    # END SOLUTION


@dataclass
class DQNConfig:
    """Hyperparameters, named as in CleanRL's dqn.py. Steps count vector steps (each one steps
    all `num_envs` copies); training starts at step `learning_starts`."""

    env_id: str = "CartPole-v1"
    seed: int = 0
    num_envs: int = 4
    total_timesteps: int = 10_000
    learning_rate: float = 2.5e-4
    buffer_size: int = 10_000
    gamma: float = 0.99
    tau: float = 1.0
    target_network_frequency: int = 500  # steps between target updates
    batch_size: int = 128
    start_e: float = 1.0
    end_e: float = 0.05
    exploration_fraction: float = 0.5  # fraction of total_timesteps over which epsilon decays
    learning_starts: int = 1000
    train_frequency: int = 1  # steps between gradient steps
    hidden_sizes: tuple[int, ...] = (120, 84)


@dataclass
class DQNResult:
    q_network: nn.Module
    target_network: nn.Module
    episode_returns: list[tuple[int, float]] = field(default_factory=list)  # (step, return)
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)


def train_dqn(config: DQNConfig) -> DQNResult:
    """Train a QNetwork with DQN and return it with its learning curve.

    Set up: `torch.manual_seed(config.seed)` before building the network, one
    `torch.Generator` seeded with `config.seed` for epsilon_greedy, a ReplayBuffer seeded with
    `config.seed`, the environments from `make_vector_env` reset with `seed=config.seed`, and
    Adam on the online network. Then at every step t = 0 .. total_timesteps - 1: epsilon from
    `linear_schedule` (over exploration_fraction * total_timesteps steps), act with
    `epsilon_greedy`, `collect_step`; from t >= learning_starts, a gradient step on `dqn_loss`
    every train_frequency steps and a target update every target_network_frequency steps.
    Record each finished episode's return (`completed_returns`) and each loss with its step."""
    # BEGIN SOLUTION
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    envs = make_vector_env(config.env_id, config.num_envs)
    obs_shape = envs.single_observation_space.shape
    q_network = QNetwork(obs_shape[0], int(envs.single_action_space.n), config.hidden_sizes)
    target_network = make_target_network(q_network)
    optimizer = torch.optim.Adam(q_network.parameters(), lr=config.learning_rate)
    buffer = ReplayBuffer(config.buffer_size, obs_shape, seed=config.seed)
    result = DQNResult(q_network, target_network)
    duration = int(config.exploration_fraction * config.total_timesteps)

    obs, _ = envs.reset(seed=config.seed)
    for step in range(config.total_timesteps):
        epsilon = linear_schedule(step, config.start_e, config.end_e, duration)
        actions = epsilon_greedy(q_network, torch.as_tensor(obs), epsilon, generator)
        obs, infos = collect_step(envs, obs, actions.numpy(), buffer)
        result.episode_returns += [(step, r) for r in completed_returns(infos)]
        if step < config.learning_starts:
            continue
        if step % config.train_frequency == 0:
            loss = dqn_loss(
                q_network, target_network, buffer.sample(config.batch_size), config.gamma
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            result.losses.append((step, loss.item()))
        if step % config.target_network_frequency == 0:
            update_target_network(target_network, q_network, config.tau)
    envs.close()
    return result
    # END SOLUTION
