"""Day w3d4_policy_gradient: REINFORCE and PPO.

Part 1 is REINFORCE (Williams 1992): play an episode, weight each action's log-probability by the
discounted reward that followed it (the reward-to-go) minus a learned baseline, and climb that
gradient. Part 2 is PPO (Schulman et al. 2017, "Proximal Policy Optimization Algorithms") in the
form of CleanRL's `ppo.py` (Huang et al. 2022, "The 37 Implementation Details of PPO"): an actor
and a critic with orthogonal initialization, rollouts from vectorized gymnasium environments,
generalized advantage estimation (GAE, Schulman et al. 2015), and several epochs of minibatch
updates of the clipped surrogate objective, a clipped value loss and an entropy bonus.

The probe environments below (after Andy Jones, "Debugging RL, Without the Agonizing Pain") are
one- or two-step problems whose right answers are known in closed form; the graders train on them
first and then on CartPole-v1. Read docs/w3d4_policy_gradient.md for the maths and the order.

Shapes: T steps per rollout, N parallel environments, B = T * N samples in a batch, b in a
minibatch, A actions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn
from torch.distributions import Categorical

# -- probe environments (given) ----------------------------------------------------------------


class ProbeEnv(gym.Env):
    """Base of the probe environments: observation a float32 vector of size 1, `n_actions`
    discrete actions. Each probe tests one piece of an agent; the docstrings give the answer."""

    n_actions = 1

    def __init__(self):
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(self.n_actions)

    def _obs(self, x: float) -> np.ndarray:
        return np.array([x], dtype=np.float32)


class ProbeConstant(ProbeEnv):
    """One action, observation 0, reward +1, then the episode terminates. V(0) = 1: the critic
    can learn a constant."""

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(0.0), {}

    def step(self, action):
        return self._obs(0.0), 1.0, True, False, {}


class ProbeObservation(ProbeEnv):
    """One action, observation -1 or +1 at random, reward equal to the observation, then the
    episode terminates. V(x) = x: the critic reads its input."""

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.choice([-1.0, 1.0]))
        return self._obs(self.x), {}

    def step(self, action):
        return self._obs(self.x), self.x, True, False, {}


class ProbeDiscount(ProbeEnv):
    """One action, two steps: observation 0, reward 0; then observation 1, reward +1 and the
    episode terminates. V(0) = gamma, V(1) = 1: rewards are discounted and bootstrapped."""

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(0.0), {}

    def step(self, action):
        self.t += 1
        if self.t == 1:
            return self._obs(1.0), 0.0, False, False, {}
        return self._obs(1.0), 1.0, True, False, {}


class ProbeAction(ProbeEnv):
    """Two actions, observation 0: action 1 gives +1, action 0 gives -1, then the episode
    terminates. The policy must learn to pick action 1 (and then V(0) = 1)."""

    n_actions = 2

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(0.0), {}

    def step(self, action):
        return self._obs(0.0), 1.0 if int(action) == 1 else -1.0, True, False, {}


class ProbeObservationAction(ProbeEnv):
    """Two actions, observation -1 or +1 at random: +1 for action 1 when the observation is +1
    and for action 0 when it is -1, else -1; then the episode terminates. The policy must read
    its input (and V(x) = 1 for both observations once it does)."""

    n_actions = 2

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.choice([-1.0, 1.0]))
        return self._obs(self.x), {}

    def step(self, action):
        right = int(action) == int(self.x > 0)
        return self._obs(self.x), 1.0 if right else -1.0, True, False, {}


class ProbeTruncation(ProbeEnv):
    """One action, observation 0 always, reward +1 every step; the episode never terminates but
    is truncated (a time limit) after `limit` steps. A time limit is not part of the task, so
    V(0) = 1 / (1 - gamma): the value after a truncation must be bootstrapped, not taken as 0."""

    limit = 4

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(0.0), {}

    def step(self, action):
        self.t += 1
        return self._obs(0.0), 1.0, False, self.t >= self.limit, {}


PROBES = (
    ProbeConstant,
    ProbeObservation,
    ProbeDiscount,
    ProbeAction,
    ProbeObservationAction,
    ProbeTruncation,
)

EnvSpec = str | Callable[[], gym.Env]  # a gymnasium id such as "CartPole-v1", or a constructor


def make_env(env: EnvSpec) -> gym.Env:
    """One environment that records its episodes' returns (`info["episode"]["r"]` at the end)."""
    return gym.wrappers.RecordEpisodeStatistics(gym.make(env) if isinstance(env, str) else env())


def make_envs(env: EnvSpec, num_envs: int) -> gym.vector.SyncVectorEnv:
    """`num_envs` copies stepped together. They reset themselves in the step that ends an
    episode (SAME_STEP autoreset): `step` then returns the new episode's first observation and
    keeps the last observation of the one that ended in `info["final_obs"]`."""
    return gym.vector.SyncVectorEnv(
        [lambda: make_env(env) for _ in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


@dataclass
class Step:
    """What one step of the vectorized environments gives back, as tensors."""

    obs: Float[Tensor, "N obs"]  # where each environment is now (a new episode's first if done)
    reward: Float[Tensor, " N"]
    terminated: Bool[Tensor, " N"]  # the episode ended for good: nothing more to come
    truncated: Bool[Tensor, " N"]  # cut by a time limit: the future was not zero
    next_obs: Float[Tensor, "N obs"]  # the state this step led to (the final one if done)
    episode_returns: list[float]  # returns of the episodes that ended in this step


def step_envs(envs: gym.vector.VectorEnv, actions: Int[Tensor, " N"]) -> Step:
    """Step every environment with its action."""
    obs, reward, terminated, truncated, info = envs.step(actions.cpu().numpy())
    next_obs = obs.copy()
    done = terminated | truncated
    returns = []
    for i in np.flatnonzero(done):
        next_obs[i] = info["final_obs"][i]
        returns.append(float(info["final_info"]["episode"]["r"][i]))
    return Step(
        obs=torch.as_tensor(obs, dtype=torch.float32),
        reward=torch.as_tensor(reward, dtype=torch.float32),
        terminated=torch.as_tensor(terminated),
        truncated=torch.as_tensor(truncated),
        next_obs=torch.as_tensor(next_obs, dtype=torch.float32),
        episode_returns=returns,
    )


# -- part 1: REINFORCE -------------------------------------------------------------------------


def rewards_to_go(rewards: Float[Tensor, " T"], gamma: float) -> Float[Tensor, " T"]:
    """Discounted reward-to-go of one whole episode: G_t = sum_{k >= t} gamma^(k - t) r_k.

    Computed backwards in one pass: G_{T-1} = r_{T-1}, G_t = r_t + gamma G_{t+1}.
    """
    raise NotImplementedError("rewards_to_go: see docs/w3d4_policy_gradient.md#rewards_to_go")


def reinforce_loss(
    logprobs: Float[Tensor, " T"], returns: Float[Tensor, " T"], baselines: Float[Tensor, " T"]
) -> Float[Tensor, ""]:
    """The REINFORCE loss whose gradient is minus the policy-gradient estimate,

        L = -mean_t [ log pi(a_t | s_t) (G_t - b(s_t)) ].

    The baseline b(s_t) (the critic's value) lowers the variance but must not change the
    gradient's direction, and the critic is trained by its own loss: no gradient flows into
    `baselines` (or `returns`) from this one.
    """
    raise NotImplementedError("reinforce_loss: see docs/w3d4_policy_gradient.md#reinforce_loss")


# -- part 2: an actor and a critic -------------------------------------------------------------


def layer_init(layer: nn.Linear, std: float = math.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    """Orthogonal initialization (Saxe et al. 2014), as in PPO's reference code: the weight becomes
    `std` times a (semi-)orthogonal matrix, the bias the constant `bias_const`. In place; returns
    `layer`."""
    raise NotImplementedError("layer_init: see docs/w3d4_policy_gradient.md#layer_init")


class Agent(nn.Module):
    """Two separate MLPs with tanh activations, each Linear initialized by `layer_init`:

        critic: obs_dim -> hidden -> hidden -> 1          (last layer std 1)
        actor:  obs_dim -> hidden -> hidden -> n_actions  (last layer std 0.01)

    hidden layers with std sqrt(2), all biases 0. `self.critic` and `self.actor` are
    `nn.Sequential`s (Linear, Tanh, Linear, Tanh, Linear). The actor's tiny last layer makes the
    first policy nearly uniform, whatever the input.
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()

        raise NotImplementedError("Agent.__init__: see docs/w3d4_policy_gradient.md#agent")

    def get_value(self, obs: Float[Tensor, "b obs"]) -> Float[Tensor, " b"]:
        """The critic's V(s), one number per observation."""
        raise NotImplementedError("Agent.get_value: see docs/w3d4_policy_gradient.md#agent")

    def get_action_and_value(
        self, obs: Float[Tensor, "b obs"], action: Int[Tensor, " b"] | None = None
    ) -> tuple[Int[Tensor, " b"], Float[Tensor, " b"], Float[Tensor, " b"], Float[Tensor, " b"]]:
        """(action, log pi(action | obs), entropy of pi(. | obs), V(obs)).

        The policy is the categorical distribution with the actor's outputs as logits. Without
        `action`, sample one; with it, evaluate that action (PPO re-scores stored actions).
        """
        raise NotImplementedError("Agent.get_action_and_value: see docs/w3d4_policy_gradient.md#agent")


def train_reinforce(
    env: EnvSpec,
    n_episodes: int,
    gamma: float = 0.99,
    lr: float = 1e-2,
    seed: int = 0,
) -> tuple[Agent, list[float]]:
    """REINFORCE with rewards-to-go and the critic as a learned baseline, one episode per update.

    Seed torch with `seed` and reset the environment with `seed` once (not again between
    episodes). Each episode: play it to the end sampling from the policy (keep the graph), then
    minimize `reinforce_loss(logprobs, G, values) + 0.5 * mean((values - G)^2)` with one Adam
    step (learning rate `lr`) on all the agent's parameters. Returns the agent and every
    episode's undiscounted return.
    """
    torch.manual_seed(seed)
    e = make_env(env)
    agent = Agent(int(np.prod(e.observation_space.shape)), int(e.action_space.n))
    raise NotImplementedError("train_reinforce: see docs/w3d4_policy_gradient.md#train_reinforce")


# -- part 3: PPO -------------------------------------------------------------------------------


@dataclass
class Rollout:
    """T steps of N environments, as `collect_rollout` records them."""

    obs: Float[Tensor, "T N obs"]  # what the agent saw
    actions: Int[Tensor, "T N"]  # what it did
    logprobs: Float[Tensor, "T N"]  # log pi_old(a_t | s_t), from the policy that acted
    values: Float[Tensor, "T N"]  # V_old(s_t)
    rewards: Float[Tensor, "T N"]
    terminated: Bool[Tensor, "T N"]
    truncated: Bool[Tensor, "T N"]
    next_obs: Float[Tensor, "T N obs"]  # s_{t+1}: the final observation where an episode ended
    episode_returns: list[float]  # of the episodes that ended during the rollout


def collect_rollout(
    envs: gym.vector.VectorEnv, agent: Agent, obs: Float[Tensor, "N obs"], n_steps: int
) -> tuple[Rollout, Float[Tensor, "N obs"]]:
    """Run the current policy for `n_steps` steps of every environment, starting from `obs`.

    Each step: sample actions with `agent.get_action_and_value` (no gradients needed: these
    are data), `step_envs` with them, and record the observation acted on, the actions, their
    log-probabilities and values, and the step's rewards, terminated and truncated flags and
    next observations. Returns the rollout and the observations to continue from next time.
    """
    raise NotImplementedError("collect_rollout: see docs/w3d4_policy_gradient.md#collect_rollout")


def compute_gae(
    rewards: Float[Tensor, "T N"],
    values: Float[Tensor, "T N"],
    next_values: Float[Tensor, "T N"],
    terminated: Bool[Tensor, "T N"],
    truncated: Bool[Tensor, "T N"],
    gamma: float,
    gae_lambda: float,
) -> Float[Tensor, "T N"]:
    """Generalized advantage estimates A_t = sum_l (gamma lambda)^l delta_{t+l}, within an episode.

    `next_values[t]` is V(s_{t+1}) of the state step t led to (after a truncation: of the final
    observation; after the rollout's last step: of the next one). The TD error

        delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)

    bootstraps unless the episode terminated (a truncated episode still had a future). Then
    backwards, with A_T = 0 past the rollout's end,

        A_t = delta_t + gamma lambda (1 - done_t) A_{t+1},   done_t = terminated_t or truncated_t,

    so no advantage leaks from one episode into the one before it.
    """
    raise NotImplementedError("compute_gae: see docs/w3d4_policy_gradient.md#compute_gae")


def normalize_advantages(advantages: Float[Tensor, " b"], eps: float = 1e-8) -> Float[Tensor, " b"]:
    """(A - mean A) / (std A + eps), with torch's default (unbiased) std, per minibatch."""
    raise NotImplementedError("normalize_advantages: see docs/w3d4_policy_gradient.md#normalize_advantages")


def clipped_surrogate_loss(
    new_logprobs: Float[Tensor, " b"],
    old_logprobs: Float[Tensor, " b"],
    advantages: Float[Tensor, " b"],
    clip_coef: float,
) -> Float[Tensor, ""]:
    """Minus PPO's clipped surrogate objective (a loss to minimize):

        r = pi(a|s) / pi_old(a|s) = exp(new_logprobs - old_logprobs)
        L_clip = -mean[ min(r A, clip(r, 1 - eps, 1 + eps) A) ],   eps = clip_coef.

    The minimum makes it a pessimistic bound: moving r beyond 1 +- eps gains nothing, moving it
    the wrong way is still penalized. `old_logprobs` and `advantages` are constants.
    """
    raise NotImplementedError("clipped_surrogate_loss: see docs/w3d4_policy_gradient.md#clipped_surrogate_loss")


def clipped_value_loss(
    new_values: Float[Tensor, " b"],
    old_values: Float[Tensor, " b"],
    returns: Float[Tensor, " b"],
    clip_coef: float | None,
) -> Float[Tensor, ""]:
    """The critic's loss, 0.5 * mean (V - R)^2, with PPO's clipping when `clip_coef` is a number:

        V_clip = V_old + clip(V - V_old, -eps, eps)
        L_V = 0.5 * mean[ max((V - R)^2, (V_clip - R)^2) ]

    so one update cannot move a value much further from the one that collected the data.
    `clip_coef=None`: the plain loss.
    """
    raise NotImplementedError("clipped_value_loss: see docs/w3d4_policy_gradient.md#clipped_value_loss")


@dataclass
class Batch:
    """Flattened samples (B = T * N of them, or a minibatch): what a PPO update needs."""

    obs: Float[Tensor, "B obs"]
    actions: Int[Tensor, " B"]
    logprobs: Float[Tensor, " B"]  # log pi_old
    values: Float[Tensor, " B"]  # V_old
    advantages: Float[Tensor, " B"]
    returns: Float[Tensor, " B"]  # advantages + values: the critic's targets

    def __len__(self) -> int:
        return len(self.actions)

    def __getitem__(self, idx: Int[Tensor, " b"]) -> Batch:
        return Batch(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


@dataclass
class PPOArgs:
    """CleanRL's defaults for CartPole, but `total_timesteps` (the graders use far fewer)."""

    num_envs: int = 4
    num_steps: int = 128  # T: steps per environment per rollout
    total_timesteps: int = 50_000
    learning_rate: float = 2.5e-4
    anneal_lr: bool = True  # linearly from learning_rate to 0 over the updates
    gamma: float = 0.99
    gae_lambda: float = 0.95
    num_minibatches: int = 4
    update_epochs: int = 4
    norm_adv: bool = True
    clip_coef: float = 0.2
    clip_vloss: bool = True
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden: int = 64
    seed: int = 0

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size


def ppo_loss(agent: Agent, mb: Batch, args: PPOArgs) -> tuple[Float[Tensor, ""], dict[str, float]]:
    """PPO's loss on one minibatch, and statistics to watch:

        loss = L_clip - ent_coef * mean entropy + vf_coef * L_V

    Re-score the stored actions under the current policy (`get_action_and_value(obs, actions)`)
    for the new log-probabilities, entropies and values; normalize the advantages over this
    minibatch when `args.norm_adv`; clip the value loss with `args.clip_coef` when
    `args.clip_vloss`. The statistics: "pg_loss", "v_loss", "entropy", "approx_kl" (the estimator
    mean((r - 1) - log r)) and "clipfrac" (the fraction of samples with |r - 1| > clip_coef).
    """
    raise NotImplementedError("ppo_loss: see docs/w3d4_policy_gradient.md#ppo_loss")


def ppo_update(
    agent: Agent,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    args: PPOArgs,
    generator: torch.Generator,
) -> dict[str, float]:
    """`args.update_epochs` passes over the batch in minibatches of `args.minibatch_size`.

    Each epoch: `perm = torch.randperm(len(batch), generator=generator)`, then the minibatches
    are the consecutive slices `perm[start : start + minibatch_size]`. Each minibatch: the
    `ppo_loss`, zero the gradients, backward, clip the gradients' global norm to
    `args.max_grad_norm` (`nn.utils.clip_grad_norm_`), optimizer step. The batch's log-probs
    stay those of the policy that collected the data, through every epoch. Returns the last
    minibatch's statistics.
    """
    raise NotImplementedError("ppo_update: see docs/w3d4_policy_gradient.md#ppo_update")


def train_ppo(env: EnvSpec, args: PPOArgs) -> tuple[Agent, list[float]]:
    """PPO: `args.num_updates` times, collect a rollout, estimate advantages, update.

    Seeding (so runs reproduce): `torch.manual_seed(args.seed)` before building the agent, the
    environments reset once with `seed=args.seed`, and the minibatch `generator` seeded with
    `args.seed`. Adam with `eps=1e-5`. With `args.anneal_lr`, update k (from 0) uses the
    learning rate `(1 - k / num_updates) * learning_rate`. After each rollout: the critic's values
    of `next_obs`, `compute_gae`, returns = advantages + values, flatten (T, N) to B, and
    `ppo_update`. Returns the agent and the returns of every episode finished, in order.
    """
    torch.manual_seed(args.seed)
    envs = make_envs(env, args.num_envs)
    obs_shape = envs.single_observation_space.shape
    agent = Agent(int(np.prod(obs_shape)), int(envs.single_action_space.n), args.hidden)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    generator = torch.Generator().manual_seed(args.seed)
    obs = torch.as_tensor(envs.reset(seed=args.seed)[0], dtype=torch.float32)
    raise NotImplementedError("train_ppo: see docs/w3d4_policy_gradient.md#train_ppo")
