"""Day w1d4_optim: optimizers, learning-rate schedules and hyperparameter search.

Part 1 writes torch-style parameter groups and the update rules of `torch.optim.SGD`, `RMSprop`,
`Adam` and `AdamW` by hand; the graders run yours and torch's side by side on every combination
of hyperparameters (and per-group ones) and compare the parameters after each step. Then a
linear-warmup + cosine learning-rate schedule and torch's StepLR, MultiStepLR and ExponentialLR.

Part 2 searches hyperparameters for a small MLP on scikit-learn's digits: a trial is one call
`objective(config, budget) -> float` (lower is better), and the searches hand their trials to a
`concurrent.futures.Executor` (local processes by default; anything with `submit` works: the
given `search_executor()` hands them to a Dask cluster when $MLAB_DASK_SCHEDULER is set). Read
docs/w1d4_optim.md for the maths and the order of the exercises.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import math
import multiprocessing
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

# -- a training loop ---------------------------------------------------------------------------


def rosenbrock(
    xy: Float[Tensor, "... 2"], a: float = 1.0, b: float = 100.0
) -> Float[Tensor, "..."]:
    """Rosenbrock's banana function (a - x)^2 + b (y - x^2)^2: minimum 0 at (a, a^2), at the end
    of a long, flat, curved valley. A classic stress test for optimizers."""
    x, y = xy[..., 0], xy[..., 1]
    return (a - x) ** 2 + b * (y - x**2) ** 2


def trajectory(
    fn: Callable[[Tensor], Tensor],
    start: Float[Tensor, " d"],
    make_optimizer: Callable[[list[nn.Parameter]], Any],
    n_steps: int,
) -> Float[Tensor, "t d"]:
    """Minimize `fn` from `start` for `n_steps` steps; return every point visited (t = n_steps + 1).

    `make_optimizer([param])` builds the optimizer (a `torch.optim` one or yours) for a single
    parameter that starts as a copy of `start` (leave `start` itself untouched). Each step is the
    usual loop: zero the gradients, evaluate `fn(param)`, backpropagate, step.
    """
    # BEGIN SOLUTION
    param = nn.Parameter(start.detach().clone())
    optimizer = make_optimizer([param])
    points = [param.detach().clone()]
    for _ in range(n_steps):
        optimizer.zero_grad()
        fn(param).backward()
        optimizer.step()
        points.append(param.detach().clone())
    return torch.stack(points)  # (n_steps + 1, d)
    # END SOLUTION


# -- optimizers --------------------------------------------------------------------------------


def param_groups(params: Iterable[nn.Parameter] | Iterable[dict], defaults: dict) -> list[dict]:
    """torch.optim's parameter groups: each optimizer keeps its parameters as a list of dicts,
    each with "params" (a list of parameters) and every hyperparameter for them.

    `params` is either parameters (one group with all of them) or dicts such as
    `{"params": model.head.parameters(), "lr": 1e-2}`, whose own hyperparameters win over
    `defaults`; "params" may be an iterable of parameters or a single one. Return one dict per
    group, "params" as a list, every key of `defaults` that the group lacks filled in. Raise
    ValueError for an empty list, or a parameter that appears in more than one group.
    """
    # BEGIN SOLUTION
    specs = list(params)
    if not specs:
        raise ValueError("optimizer got an empty parameter list")
    if not isinstance(specs[0], dict):
        specs = [{"params": specs}]
    groups, seen = [], set()
    for spec in specs:
        group = dict(spec)
        ps = group["params"]
        group["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        for p in group["params"]:
            if id(p) in seen:
                raise ValueError("some parameters appear in more than one parameter group")
            seen.add(id(p))
        for key, value in defaults.items():
            group.setdefault(key, value)
        groups.append(group)
    return groups
    # END SOLUTION


class Optimizer:
    """What every optimizer here shares, as in torch: `param_groups` (from `param_groups`
    above), `state` (a dict from each parameter to a dict of its buffers, filled in by `step`
    the first time the parameter has a gradient) and `zero_grad`.

    `optimizer.lr` is a shortcut for single-group use: it reads the first group's lr and sets
    every group's. Schedules set `group["lr"]` per group. Parameters whose `.grad` is None (not
    used by the loss) are skipped by `step`, exactly as in torch: no weight decay, no state update.
    """

    def __init__(self, params: Iterable[nn.Parameter] | Iterable[dict], defaults: dict):
        if defaults["lr"] < 0:
            raise ValueError(f"invalid learning rate: {defaults['lr']}")
        self.defaults = defaults
        self.param_groups = param_groups(params, defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}

    @property
    def params(self) -> list[nn.Parameter]:
        """Every parameter of every group, in order."""
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def lr(self) -> float:
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.param_groups:
            group["lr"] = value

    def zero_grad(self) -> None:
        """Forget the gradients (set to None, as torch does by default)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError("each optimizer defines its own step")


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight
    decay: `torch.optim.SGD`'s update rule. Per parameter, with g the gradient and every
    hyperparameter read from the parameter's group:

        g <- g + weight_decay * theta                      (L2 penalty, before momentum)
        b <- g on the first step, else momentum * b + (1 - dampening) * g
        g <- g + momentum * b if nesterov, else b          (only when momentum != 0)
        theta <- theta - lr * g
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter] | Iterable[dict],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self) -> None:
        # BEGIN SOLUTION
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if weight_decay != 0:
                    g = g + weight_decay * p
                if momentum != 0:
                    state = self.state.setdefault(p, {})
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = g.clone()  # no dampening on the first step
                    else:
                        state["momentum_buffer"].mul_(momentum).add_(g, alpha=1 - dampening)
                    b = state["momentum_buffer"]
                    g = g + momentum * b if nesterov else b
                p.add_(g, alpha=-lr)
        # END SOLUTION


class RMSprop(Optimizer):
    """RMSprop (Hinton's Coursera lecture 6e), as `torch.optim.RMSprop`: each coordinate's step
    is divided by a running root-mean-square of its gradients. Per parameter, hyperparameters
    from its group:

        g <- g + weight_decay * theta
        v <- alpha * v + (1 - alpha) * g^2                 (v starts at 0)
        centered: g_avg <- alpha * g_avg + (1 - alpha) * g;  v~ = v - g_avg^2;  else v~ = v
        d = g / (sqrt(v~) + eps)
        momentum > 0: b <- momentum * b + d (b starts at 0);  theta <- theta - lr * b
        otherwise:    theta <- theta - lr * d
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter] | Iterable[dict],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ):
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "centered": centered,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self) -> None:
        # BEGIN SOLUTION
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            weight_decay, momentum = group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.setdefault(p, {})
                if not state:
                    state["v"] = torch.zeros_like(p)  # running mean of g^2
                    state["g_avg"] = torch.zeros_like(p)  # running mean of g (centered)
                    state["b"] = torch.zeros_like(p)  # momentum buffer
                g = p.grad
                if weight_decay != 0:
                    g = g + weight_decay * p
                v = state["v"].mul_(alpha).addcmul_(g, g, value=1 - alpha)
                if group["centered"]:
                    g_avg = state["g_avg"].mul_(alpha).add_(g, alpha=1 - alpha)
                    denom = (v - g_avg**2).sqrt() + eps
                else:
                    denom = v.sqrt() + eps
                if momentum > 0:
                    b = state["b"].mul_(momentum).add_(g / denom)
                    p.add_(b, alpha=-lr)
                else:
                    p.add_(g / denom, alpha=-lr)
        # END SOLUTION


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with L2 weight decay folded into the gradient, as
    `torch.optim.Adam`. Per parameter, hyperparameters from its group, with t the number of
    steps this parameter has taken, counting this one (t = 1 first):

        g <- g + weight_decay * theta
        m <- beta1 * m + (1 - beta1) * g                   (m, v start at 0)
        v <- beta2 * v + (1 - beta2) * g^2
        amsgrad: v_max <- max(v_max, v) and use v_max in place of v below
        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)
        theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ):
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self) -> None:
        # BEGIN SOLUTION
        self._step(decoupled=False)

    def _step(self, decoupled: bool) -> None:
        """Adam's step; with `decoupled`, AdamW's (decay the weights, not the gradient)."""
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.setdefault(p, {})
                if not state:
                    state["t"] = 0
                    state["m"], state["v"] = torch.zeros_like(p), torch.zeros_like(p)
                    state["v_max"] = torch.zeros_like(p)
                state["t"] += 1
                t, g = state["t"], p.grad
                if decoupled:
                    p.mul_(1 - lr * weight_decay)  # decoupled decay, before the update
                elif weight_decay != 0:
                    g = g + weight_decay * p
                m = state["m"].mul_(beta1).add_(g, alpha=1 - beta1)
                v = state["v"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                if group["amsgrad"]:
                    v = torch.maximum(state["v_max"], v, out=state["v_max"])
                m_hat = m / (1 - beta1**t)
                v_hat = v / (1 - beta2**t)
                p.add_(m_hat / (v_hat.sqrt() + eps), alpha=-lr)
        # END SOLUTION


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019): Adam with *decoupled* weight decay, as
    `torch.optim.AdamW`. Before the Adam update (which now has no L2 term in g):

        theta <- theta * (1 - lr * weight_decay)

    so the decay no longer passes through m / sqrt(v) and is the same for every weight.
    The hyperparameters are Adam's (inherited `__init__`, with another default weight decay);
    write `step`.
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)

    @torch.no_grad()
    def step(self) -> None:
        # BEGIN SOLUTION
        self._step(decoupled=True)
        # END SOLUTION


# -- learning-rate schedule --------------------------------------------------------------------


def warmup_cosine_lr(
    step: int, base_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0
) -> float:
    """The learning rate for `step` (0-based) of a run of `total_steps` steps.

    Linear warmup from 0 to `base_lr` over the first `warmup_steps` steps (lr = 0 at step 0),
    then half a cosine from `base_lr` down to `min_lr`, reached at step `total_steps` and kept
    after it. With warmup_steps = 0 the cosine starts at step 0.
    """
    # BEGIN SOLUTION
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)  # 0 -> 1
    return min_lr + (base_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
    # END SOLUTION


class LRScheduler:
    """The base of the schedules, as `torch.optim.lr_scheduler.LRScheduler`: it works on any
    optimizer with `param_groups` (yours or torch's).

    Construction records each group's lr as that group's base lr (kept in the group as
    "initial_lr", as torch does) and sets the lr of step 0; each `step()` (call it after
    `optimizer.step()`) moves on to the next step and sets every group's lr to
    `lr_at(base_lr, step)`. Subclasses define `lr_at`: a closed form of the step.
    """

    def __init__(self, optimizer: Any):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0  # torch's name for the number of step() calls so far
        self._set_lrs()

    def lr_at(self, base_lr: float, step: int) -> float:
        raise NotImplementedError("each schedule defines its own lr_at")

    def step(self) -> None:
        self.last_epoch += 1
        self._set_lrs()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def _set_lrs(self) -> None:
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.lr_at(base_lr, self.last_epoch)


class WarmupCosine(LRScheduler):
    """Drives every group's lr with `warmup_cosine_lr` (each group from its own base lr)."""

    def __init__(self, optimizer: Any, warmup_steps: int, total_steps: int, min_lr: float = 0.0):
        self.warmup_steps, self.total_steps, self.min_lr = warmup_steps, total_steps, min_lr
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, step: int) -> float:
        return warmup_cosine_lr(step, base_lr, self.warmup_steps, self.total_steps, self.min_lr)


class StepLR(LRScheduler):
    """`torch.optim.lr_scheduler.StepLR`: multiply the lr by `gamma` every `step_size` steps."""

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, step: int) -> float:
        # BEGIN SOLUTION
        return base_lr * self.gamma ** (step // self.step_size)
        # END SOLUTION


class MultiStepLR(LRScheduler):
    """`torch.optim.lr_scheduler.MultiStepLR`: multiply the lr by `gamma` at each milestone
    step (milestones in any order; one listed twice multiplies twice)."""

    def __init__(self, optimizer: Any, milestones: Iterable[int], gamma: float = 0.1):
        self.milestones, self.gamma = list(milestones), gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, step: int) -> float:
        # BEGIN SOLUTION
        passed = bisect.bisect_right(sorted(self.milestones), step)  # milestones <= step
        return base_lr * self.gamma**passed
        # END SOLUTION


class ExponentialLR(LRScheduler):
    """`torch.optim.lr_scheduler.ExponentialLR`: multiply the lr by `gamma` at every step."""

    def __init__(self, optimizer: Any, gamma: float):
        self.gamma = gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, step: int) -> float:
        # BEGIN SOLUTION
        return base_lr * self.gamma**step
        # END SOLUTION


# -- the trial: a small MLP on digits ----------------------------------------------------------


@functools.lru_cache(maxsize=1)
def digits_data(
    val_fraction: float = 0.2, seed: int = 0
) -> tuple[Float[Tensor, "n 64"], Int[Tensor, " n"], Float[Tensor, "m 64"], Int[Tensor, " m"]]:
    """scikit-learn's 8x8 digits (1797 images, bundled with scikit-learn, no download), pixels
    scaled to [0, 1], split at random (fixed seed) into (x_train, y_train, x_val, y_val)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the digits data needs scikit-learn: pip install scikit-learn") from None
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_val = int(len(x) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def make_mlp(hidden: int = 32, seed: int = 0) -> nn.Sequential:
    """64 -> hidden -> 10 with a ReLU, initialized from `seed` (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def minibatches(n: int, batch_size: int, steps: int, seed: int = 0) -> Iterator[Int[Tensor, " b"]]:
    """`steps` batches of indices into n examples, drawn with replacement from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        yield torch.randint(0, n, (batch_size,), generator=generator)


@torch.no_grad()
def evaluate(model: nn.Module, x: Float[Tensor, "n 64"], y: Int[Tensor, " n"]) -> float:
    """Mean cross-entropy of `model` on (x, y)."""
    return F.cross_entropy(model(x), y).item()


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
}
TRIAL_DEFAULTS = {"hidden": 32, "batch_size": 64, "warmup": 0.1, "seed": 0}


def train_trial(config: dict, budget: int) -> float:
    """Train `make_mlp(hidden, seed)` on the digits for `budget` steps; return the validation loss.

    `config` holds "optimizer" (a key of OPTIMIZERS) and "lr", optionally the keys of
    TRIAL_DEFAULTS ("warmup" is the fraction of the budget spent warming up), and any other key is
    passed on to the optimizer (e.g. "momentum", "betas", "weight_decay"). The loop:

        optimizer = OPTIMIZERS[name](model.parameters(), lr=lr, **extra)
        schedule = WarmupCosine(optimizer, int(warmup * budget), budget)
        for idx in minibatches(len(x_train), batch_size, budget, seed):
            zero_grad; cross-entropy of the batch; backward; optimizer.step(); schedule.step()

    Unknown optimizers or arguments raise (the search records the trial as failed). Module-level,
    so that a process pool can pickle it.
    """
    # BEGIN SOLUTION
    config = {**TRIAL_DEFAULTS, **config}
    name, lr = config.pop("optimizer"), config.pop("lr")
    hidden, batch_size = config.pop("hidden"), config.pop("batch_size")
    warmup, seed = config.pop("warmup"), config.pop("seed")
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {sorted(OPTIMIZERS)}")
    x, y, x_val, y_val = digits_data()
    model = make_mlp(hidden, seed)
    optimizer = OPTIMIZERS[name](model.parameters(), lr=lr, **config)
    schedule = WarmupCosine(optimizer, int(warmup * budget), budget)
    for idx in minibatches(len(x), batch_size, budget, seed):
        optimizer.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        optimizer.step()
        schedule.step()
    return evaluate(model, x_val, y_val)
    # END SOLUTION


# -- running trials on an executor -------------------------------------------------------------


def _init_worker() -> None:
    """Each worker process uses one thread: the pool, not torch, provides the parallelism."""
    torch.set_num_threads(1)


def default_executor(max_workers: int | None = None) -> ProcessPoolExecutor:
    """Local worker processes, started with 'spawn' (a fresh interpreter: safe with torch's
    threads, unlike fork). The objective must be picklable: a module-level function."""
    workers = max_workers or min(4, os.cpu_count() or 1)
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)


@contextlib.contextmanager
def using_executor(executor: Executor | None) -> Iterator[Executor]:
    """`with using_executor(executor) as ex:` gives `executor`, or a `default_executor()` that is
    shut down on exit when `executor` is None. An executor you were given stays open."""
    if executor is not None:
        yield executor
        return
    with default_executor() as own:
        yield own


DASK_SCHEDULER_ENV = "MLAB_DASK_SCHEDULER"  # e.g. tcp://10.0.0.5:8786: the organizers' cluster
DASK_RESOURCES_ENV = "MLAB_DASK_RESOURCES"  # e.g. GPU=1: what each trial claims on a worker


@contextlib.contextmanager
def search_executor(max_workers: int | None = None) -> Iterator[Executor]:
    """Where the searches run: `with search_executor() as ex: random_search(..., executor=ex)`.

    When $MLAB_DASK_SCHEDULER holds a Dask scheduler's address, the trials go to that cluster
    (`dask.distributed.Client(address).get_executor()`; the client is closed on exit, the
    cluster keeps running), each claiming the worker resources in $MLAB_DASK_RESOURCES
    ("GPU=1": one trial per GPU at a time). Otherwise they run on `default_executor(max_workers)`,
    local worker processes shut down on exit.
    """
    address = os.environ.get(DASK_SCHEDULER_ENV, "").strip()
    if not address:
        with default_executor(max_workers) as executor:
            yield executor
        return
    try:
        from dask.distributed import Client
    except ImportError:
        raise ImportError(
            f"{DASK_SCHEDULER_ENV} is set, but Dask is not installed: pip install 'dask[distributed]'"
        ) from None
    resources = {}
    for item in os.environ.get(DASK_RESOURCES_ENV, "").replace(",", " ").split():
        name, _, amount = item.partition("=")
        resources[name] = float(amount or 1)
    with Client(address, timeout=30) as client:
        yield client.get_executor(**({"resources": resources} if resources else {}))


@dataclass
class Trial:
    """One call objective(config, budget): its value, or the error it raised."""

    config: dict
    budget: int
    value: float | None = None
    error: str | None = None  # "ValueError: unknown optimizer 'lbfgs'" when the trial failed

    @property
    def ok(self) -> bool:
        """Finished with a finite value (a diverged NaN run is not ok either)."""
        return self.error is None and self.value is not None and math.isfinite(self.value)


@dataclass
class SearchResult:
    trials: list[Trial] = field(default_factory=list)  # in the order they were submitted

    @property
    def best(self) -> Trial | None:
        """The ok trial with the lowest value among those with the largest budget."""
        ok = [t for t in self.trials if t.ok]
        if not ok:
            return None
        top = max(t.budget for t in ok)
        return min((t for t in ok if t.budget == top), key=lambda t: t.value)


Objective = Callable[[dict, int], float]


def run_trials(
    objective: Objective, configs: Sequence[dict], budget: int, executor: Executor
) -> list[Trial]:
    """Run objective(config, budget) for every config on `executor`; one Trial per config, in
    the order of `configs`.

    Submit them all before waiting for any (so they run in parallel), then collect each result.
    A trial that raises is recorded with error "<ExceptionType>: <message>" and value None; it
    must not stop the others.
    """
    # BEGIN SOLUTION
    futures: list[Future] = [executor.submit(objective, config, budget) for config in configs]
    trials = []
    for config, future in zip(configs, futures, strict=True):
        try:
            trials.append(Trial(config, budget, value=float(future.result())))
        except Exception as e:  # a failed trial is data, not a crash
            trials.append(Trial(config, budget, error=f"{type(e).__name__}: {e}"))
    return trials
    # END SOLUTION


def grid_search(
    objective: Objective, space: dict[str, list], budget: int, executor: Executor | None = None
) -> SearchResult:
    """Every combination of the values in `space` (a dict of lists), in `itertools.product`
    order over the keys as they appear in `space`, each run with `budget`."""
    # BEGIN SOLUTION
    keys = list(space)
    configs = [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*space.values())
    ]
    with using_executor(executor) as ex:
        return SearchResult(run_trials(objective, configs, budget, ex))
    # END SOLUTION


# -- random search -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from [low, high]."""

    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class LogUniform:
    """A positive float whose logarithm is uniform: every factor of 10 between low and high is
    equally likely. The right prior for scales such as learning rates and weight decay."""

    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        """One draw, using exactly one call `rng.uniform(...)`."""
        # BEGIN SOLUTION
        return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        # END SOLUTION


def sample_config(space: dict[str, Any], rng: random.Random) -> dict:
    """One config from `space`, keys in order: a `Uniform`/`LogUniform` value is sampled with its
    `sample(rng)`, a list is a choice (`rng.choice`), anything else is a constant."""
    # BEGIN SOLUTION
    config = {}
    for key, value in space.items():
        if isinstance(value, Uniform | LogUniform):
            config[key] = value.sample(rng)
        elif isinstance(value, list):
            config[key] = rng.choice(value)
        else:
            config[key] = value
    return config
    # END SOLUTION


def random_search(
    objective: Objective,
    space: dict[str, Any],
    n_trials: int,
    budget: int,
    seed: int = 0,
    executor: Executor | None = None,
) -> SearchResult:
    """`n_trials` configs drawn one after the other by `sample_config(space, rng)` with
    `rng = random.Random(seed)`, each run with `budget`."""
    # BEGIN SOLUTION
    rng = random.Random(seed)
    configs = [sample_config(space, rng) for _ in range(n_trials)]
    with using_executor(executor) as ex:
        return SearchResult(run_trials(objective, configs, budget, ex))
    # END SOLUTION


# -- successive halving ------------------------------------------------------------------------


def successive_halving(
    objective: Objective,
    configs: Sequence[dict],
    min_budget: int,
    eta: int = 2,
    executor: Executor | None = None,
) -> SearchResult:
    """Successive halving (Jamieson & Talwalkar, 2016; the inner loop of Hyperband).

    Round k runs its configs (round 0: all of them, in order) with budget min_budget * eta**k, all
    at once through `run_trials`. The best max(1, n_k // eta) ok trials of round k (lowest value
    first; ties keep round order) make round k + 1, in that ranked order; fewer if fewer were ok.
    Stop after a round of a single config, or when no trial of a round was ok. Every trial of
    every round is in the result, in the order run; each trial starts from scratch.
    """
    # BEGIN SOLUTION
    trials: list[Trial] = []
    current, budget = list(configs), min_budget
    with using_executor(executor) as ex:
        while current:
            results = run_trials(objective, current, budget, ex)
            trials.extend(results)
            ranked = sorted((t for t in results if t.ok), key=lambda t: t.value)  # stable
            if len(current) == 1:
                break
            current = [t.config for t in ranked[: max(1, len(current) // eta)]]
            budget *= eta
    return SearchResult(trials)
    # END SOLUTION
