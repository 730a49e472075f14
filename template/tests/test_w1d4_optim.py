"""Graders for day w1d4_optim: your optimizers step for step against torch.optim, the schedule
against transformers' built-in, and the searches on thread and process pools.

Run one exercise with `pytest tests/test_w1d4_optim.py -k sgd`.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import random
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

import pytest
import torch
import torch.nn.functional as F
import w1d4_optim_helpers as helpers
from checks import assert_close
from mlab import w1d4_optim as m
from torch import nn

points = pytest.mark.points


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run faster on one thread, and the grading machine's cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- the training loop -------------------------------------------------------------------------


@points(2)
@pytest.mark.parametrize(
    "name,make",
    [
        ("SGD(lr=1e-3, momentum=0.9)", lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9)),
        ("Adam(lr=0.05)", lambda ps: torch.optim.Adam(ps, lr=0.05)),
    ],
)
def test_trajectory(name, make):
    start = torch.tensor([-1.5, 2.0])
    got = m.trajectory(m.rosenbrock, start, make, 30)
    param = nn.Parameter(start.clone())
    optimizer, expected = make([param]), [start.clone()]
    for _ in range(30):
        optimizer.zero_grad()
        m.rosenbrock(param).backward()
        optimizer.step()
        expected.append(param.detach().clone())
    what = f"trajectory(rosenbrock, start (-1.5, 2.0), torch.optim.{name}, n_steps=30)"
    assert_close(got, torch.stack(expected), what=what)
    assert_close(
        start, torch.tensor([-1.5, 2.0]), what="`start` after trajectory (must not change)"
    )


# -- optimizers against torch.optim ------------------------------------------------------------

STEPS = 25
NAMES = ("W (4, 3)", "b (3,)", "u (2,), never gets a gradient")


def _problem():
    """A small tanh regression in float64 (so rounding cannot hide a wrong formula)."""
    g = torch.Generator().manual_seed(0)
    x, y = (
        torch.randn(8, 4, generator=g, dtype=torch.float64),
        torch.randn(8, 3, generator=g, dtype=torch.float64),
    )
    params = [
        torch.randn(*shape, generator=g, dtype=torch.float64) for shape in ((4, 3), (3,), (2,))
    ]
    return x, y, params


def _loss(x, y, params):
    W, b, _unused = params
    return ((x @ W + b).tanh() - y).pow(2).mean() + 0.1 * W.abs().sum()


def _describe(cls, kwargs: dict) -> str:
    return f"{cls.__name__}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"


def compare_with_torch(
    ours, reference, kwargs: dict, lrs: list[float] | None = None, groups=None
) -> None:
    """Step your optimizer and torch's side by side from the same start; compare every parameter
    after every step. `lrs`: a learning rate to set before each step (as a schedule would).
    `groups(params)`: parameter groups (a list of dicts) to pass instead of the parameters."""
    x, y, init = _problem()
    mine = [nn.Parameter(p.clone()) for p in init]
    theirs = [nn.Parameter(p.clone()) for p in init]
    spec = groups or (lambda ps: ps)
    opt, ref = ours(spec(mine), **kwargs), reference(spec(theirs), **kwargs)
    for step in range(1, STEPS + 1):
        if lrs is not None:
            opt.lr = lrs[step - 1]
            ref.param_groups[0]["lr"] = lrs[step - 1]
        for params, optimizer in ((mine, opt), (theirs, ref)):
            optimizer.zero_grad()
            _loss(x, y, params).backward()
            optimizer.step()
        for name, a, b in zip(NAMES, mine, theirs, strict=True):
            what = f"{_describe(ours, kwargs)}: parameter {name} after step {step}"
            if groups is not None:
                what += f" with groups {_describe_groups(spec(NAMES))}"
            if lrs is not None:
                what += f" (lr set to {lrs[step - 1]:g} before this step)"
            assert_close(
                a,
                b,
                what=what + f", against torch.optim.{reference.__name__}",
                atol=1e-9,
                rtol=1e-7,
            )


def _describe_groups(groups: list[dict]) -> str:
    return (
        "["
        + ", ".join(
            "{"
            + ", ".join(f"{k}: {v!r}" if k != "params" else f"params: {v}" for k, v in g.items())
            + "}"
            for g in groups
        )
        + "]"
    )


def grid(**axes) -> list[dict]:
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]


# -- parameter groups --------------------------------------------------------------------------


def check_groups(got, spec_for, defaults: dict, what: str) -> None:
    """Your param_groups(spec, defaults) against torch.optim.Optimizer(spec, defaults)'s."""
    expected = torch.optim.Optimizer(spec_for(), dict(defaults)).param_groups
    assert isinstance(got, list) and len(got) == len(expected), (
        f"{what}: expected a list of {len(expected)} group dicts, got {type(got).__name__}"
        f"{f' of {len(got)}' if isinstance(got, list) else ''}"
    )
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert isinstance(g, dict) and isinstance(g.get("params"), list), (
            f"{what}: group {i} should be a dict whose 'params' is a list, got {g!r:.120}"
        )
        same = len(g["params"]) == len(e["params"]) and all(
            a is b for a, b in zip(g["params"], e["params"], strict=False)
        )
        assert same, (
            f"{what}: group {i} holds {len(g['params'])} parameters, expected the same "
            f"{len(e['params'])} parameter objects as torch, in order"
        )
        mine = {k: v for k, v in g.items() if k != "params"}
        theirs = {k: v for k, v in e.items() if k != "params"}
        assert mine == theirs, (
            f"{what}: group {i} has hyperparameters {mine}, torch.optim has {theirs} (the group's "
            "own values win, defaults fill in the rest)"
        )


@points(2)
def test_param_groups():
    w, b, u, v = (nn.Parameter(torch.randn(3)) for _ in range(4))
    defaults = {"lr": 0.1, "momentum": 0.9, "betas": (0.9, 0.99)}
    check_groups(
        m.param_groups([w, b], defaults),
        lambda: [w, b],
        defaults,
        "param_groups([w, b], defaults)",
    )
    model = nn.Linear(3, 2)
    check_groups(
        m.param_groups(model.parameters(), defaults),
        lambda: model.parameters(),
        defaults,
        "param_groups(model.parameters(), defaults) (a generator)",
    )

    def spec():
        return [
            {"params": [w, b], "lr": 0.01, "momentum": 0.0},
            {"params": u},  # a single parameter, all defaults
            {"params": iter([v]), "betas": (0.5, 0.6), "weight_decay": 0.3},  # an extra key
        ]

    check_groups(
        m.param_groups(spec(), defaults),
        spec,
        defaults,
        "param_groups([{params: [w, b], lr: 0.01, momentum: 0}, {params: u}, {params: iter([v]), "
        "betas: (0.5, 0.6), weight_decay: 0.3}], defaults)",
    )


@points(1)
def test_param_groups_errors():
    w, b = nn.Parameter(torch.randn(3)), nn.Parameter(torch.randn(2))
    for spec, what in [
        ([], "an empty list"),
        ([{"params": [w]}, {"params": [b, w]}], "w in two groups"),
    ]:
        try:
            m.param_groups(spec, {"lr": 0.1})
        except NotImplementedError:
            raise
        except ValueError:
            continue
        pytest.fail(
            f"param_groups with {what} should raise ValueError, as torch.optim does", pytrace=False
        )


# Per-group hyperparameters: group 0 differs from the defaults in every hyperparameter the
# optimizer has, group 1 takes the defaults, so reading any value from the wrong place shows.
GROUPS = {
    "SGD": (
        {"lr": 0.05, "momentum": 0.9, "nesterov": True},
        {"lr": 0.1, "momentum": 0.5, "dampening": 0.3, "weight_decay": 0.3, "nesterov": False},
    ),
    "RMSprop": (
        {"lr": 0.01},
        {
            "lr": 0.02,
            "alpha": 0.5,
            "eps": 0.1,
            "weight_decay": 0.3,
            "momentum": 0.8,
            "centered": True,
        },
    ),
    "Adam": (
        {"lr": 0.05},
        {"lr": 0.01, "betas": (0.5, 0.8), "eps": 0.1, "weight_decay": 0.3, "amsgrad": True},
    ),
    "AdamW": (
        {"lr": 0.05, "weight_decay": 0.3},
        {"lr": 0.02, "betas": (0.5, 0.8), "eps": 0.1, "weight_decay": 0.01, "amsgrad": True},
    ),
}


@points(2)
@pytest.mark.parametrize("name", list(GROUPS))
@pytest.mark.parametrize("own", [0, 1], ids=["W has its own", "b has its own"])
def test_optimizer_param_groups(name, own):
    """Two groups, one with its own value of every hyperparameter, against torch.optim."""
    defaults, overrides = GROUPS[name]

    def groups(ps):
        W, b, u = ps
        first, rest = ([W], [b, u]) if own == 0 else ([b], [W, u])
        return [{"params": first, **overrides}, {"params": rest}]

    compare_with_torch(getattr(m, name), getattr(torch.optim, name), defaults, groups=groups)


@points(1)
def test_sgd_plain():
    compare_with_torch(m.SGD, torch.optim.SGD, {"lr": 0.1})


@points(1)
def test_sgd_weight_decay():
    compare_with_torch(m.SGD, torch.optim.SGD, {"lr": 0.1, "weight_decay": 0.3})


@points(2)
@pytest.mark.parametrize("dampening", [0.0, 0.3, 1.0])
def test_sgd_momentum(dampening):
    compare_with_torch(
        m.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": dampening}
    )


@points(2)
def test_sgd_nesterov():
    compare_with_torch(m.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True})


@points(3)
def test_sgd_grid():
    """Every combination; nesterov needs momentum > 0 and no dampening (torch refuses others)."""
    for kwargs in grid(
        lr=[0.05],
        momentum=[0.0, 0.5, 0.9],
        dampening=[0.0, 0.3, 1.0],
        weight_decay=[0.0, 0.3],
        nesterov=[False, True],
    ):
        if kwargs["nesterov"] and (kwargs["momentum"] == 0 or kwargs["dampening"] != 0):
            continue
        compare_with_torch(m.SGD, torch.optim.SGD, kwargs)


@points(1)
def test_rmsprop_plain():
    compare_with_torch(m.RMSprop, torch.optim.RMSprop, {"lr": 0.01})


@points(1)
def test_rmsprop_centered():
    compare_with_torch(m.RMSprop, torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9, "centered": True})


@points(1)
def test_rmsprop_momentum():
    compare_with_torch(m.RMSprop, torch.optim.RMSprop, {"lr": 0.01, "momentum": 0.8})


@points(3)
def test_rmsprop_grid():
    for kwargs in grid(
        lr=[0.01],
        alpha=[0.99, 0.5],
        eps=[1e-8, 0.1],
        weight_decay=[0.0, 0.3],
        momentum=[0.0, 0.8],
        centered=[False, True],
    ):
        compare_with_torch(m.RMSprop, torch.optim.RMSprop, kwargs)


@points(2)
def test_adam_plain():
    compare_with_torch(m.Adam, torch.optim.Adam, {"lr": 0.05})


@points(3)
def test_adam_grid():
    for kwargs in grid(
        lr=[0.05],
        betas=[(0.9, 0.999), (0.5, 0.8)],
        eps=[1e-8, 0.1],
        weight_decay=[0.0, 0.3],
        amsgrad=[False, True],
    ):
        compare_with_torch(m.Adam, torch.optim.Adam, kwargs)


@points(2)
def test_adamw_plain():
    compare_with_torch(m.AdamW, torch.optim.AdamW, {"lr": 0.05, "weight_decay": 0.3})


@points(3)
def test_adamw_grid():
    for kwargs in grid(
        lr=[0.05],
        betas=[(0.9, 0.999), (0.5, 0.8)],
        eps=[1e-8, 0.1],
        weight_decay=[0.0, 0.01, 0.3],
        amsgrad=[False, True],
    ):
        compare_with_torch(m.AdamW, torch.optim.AdamW, kwargs)


LR_CHANGES = [0.05 * (1 + 0.5 * math.sin(k)) for k in range(STEPS)]


@points(1)
@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.3}),
        ("RMSprop", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.3}),
        ("Adam", {"lr": 0.05, "weight_decay": 0.3}),
        ("AdamW", {"lr": 0.05, "weight_decay": 0.3}),
    ],
)
def test_lr_read_at_every_step(name, kwargs):
    """A schedule changes `optimizer.lr` between steps: `step` must use the current value."""
    compare_with_torch(getattr(m, name), getattr(torch.optim, name), kwargs, lrs=LR_CHANGES)


# -- the schedule ------------------------------------------------------------------------------


def _reference_lrs(base_lr, warmup, total, min_lr):
    """Learning rates of steps 0..total from transformers' cosine-with-warmup schedule."""
    from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup

    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base_lr)
    schedule = get_cosine_with_min_lr_schedule_with_warmup(opt, warmup, total, min_lr=min_lr)
    lrs = []
    for _ in range(total + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return torch.tensor(lrs, dtype=torch.float64)


@points(2)
@pytest.mark.parametrize(
    "base_lr,warmup,total,min_lr",
    [(0.1, 10, 50, 0.0), (3e-4, 0, 20, 1e-5), (1.0, 5, 6, 0.1), (0.5, 1, 30, 0.05)],
)
def test_warmup_cosine_lr(base_lr, warmup, total, min_lr):
    got = torch.tensor(
        [m.warmup_cosine_lr(s, base_lr, warmup, total, min_lr) for s in range(total + 1)],
        dtype=torch.float64,
    )
    what = f"warmup_cosine_lr(steps 0..{total}, base_lr={base_lr}, warmup_steps={warmup}, min_lr={min_lr})"
    assert_close(
        got,
        _reference_lrs(base_lr, warmup, total, min_lr),
        what=what + " against transformers",
        atol=1e-12,
        rtol=1e-9,
    )


@points(1)
def test_warmup_cosine_lr_after_the_end():
    got = torch.tensor(
        [m.warmup_cosine_lr(s, 0.1, 5, 20, 0.01) for s in (20, 21, 35, 1000)], dtype=torch.float64
    )
    assert_close(
        got,
        torch.full((4,), 0.01, dtype=torch.float64),
        what="warmup_cosine_lr at and after total_steps=20 (should stay at min_lr=0.01)",
        atol=1e-12,
    )


@points(1)
@pytest.mark.parametrize("warmup,total", [(5, 5), (1, 1)])
def test_warmup_cosine_lr_warmup_is_everything(warmup, total):
    """warmup_steps == total_steps: a warmup over the whole run, then min_lr from total_steps."""
    steps = list(range(total + 4))
    got = torch.tensor(
        [m.warmup_cosine_lr(s, 0.1, warmup, total, 0.01) for s in steps], dtype=torch.float64
    )
    expected = _reference_lrs(0.1, warmup, total, 0.01)[:total].tolist()  # the warmup
    expected += [0.01] * (len(steps) - total)
    assert_close(
        got,
        torch.tensor(expected, dtype=torch.float64),
        what=f"warmup_cosine_lr(steps 0..{steps[-1]}, base_lr=0.1, warmup_steps={warmup}, "
        f"total_steps={total}, min_lr=0.01): warmup as transformers', min_lr from step {total}",
        atol=1e-12,
    )


def _schedule_lrs(make, steps: int) -> torch.Tensor:
    """(steps, 2): both groups' lr before each optimizer step, a torch SGD with groups of lr 0.1
    and 0.03 driven by the schedule `make(optimizer)`."""
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.03}], lr=0.1)
    schedule = make(opt)
    lrs = []
    for _ in range(steps):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        schedule.step()
    return torch.tensor(lrs, dtype=torch.float64)


SCHEDULES = [
    ("StepLR", {"step_size": 3}),
    ("StepLR", {"step_size": 1, "gamma": 0.5}),
    ("StepLR", {"step_size": 4, "gamma": 0.7}),
    ("MultiStepLR", {"milestones": [2, 5, 9]}),
    ("MultiStepLR", {"milestones": [7, 2, 2], "gamma": 0.5}),  # unsorted, one twice
    ("ExponentialLR", {"gamma": 0.8}),
    ("ExponentialLR", {"gamma": 1.05}),
]


@points(1)
@pytest.mark.parametrize("name,kwargs", SCHEDULES, ids=[f"{n}({k})" for n, k in SCHEDULES])
def test_lr_scheduler(name, kwargs):
    """Your schedule and torch.optim.lr_scheduler's, each on a torch SGD with two groups."""
    got = _schedule_lrs(lambda opt: getattr(m, name)(opt, **kwargs), 14)
    expected = _schedule_lrs(lambda opt: getattr(torch.optim.lr_scheduler, name)(opt, **kwargs), 14)
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    assert_close(
        got,
        expected,
        what=f"{name}(optimizer, {args}): lr of groups (lr 0.1, lr 0.03) before steps 0..13 "
        f"(index (step, group)), against torch.optim.lr_scheduler.{name}",
        atol=1e-12,
        rtol=1e-9,
    )


@points(1)
def test_lr_scheduler_drives_your_sgd():
    """StepLR on your SGD with two groups: the same parameters as torch's SGD under torch's StepLR."""
    x, y, init = _problem()
    mine = [nn.Parameter(p.clone()) for p in init]
    theirs = [nn.Parameter(p.clone()) for p in init]

    def spec(ps):
        return [{"params": ps[:1], "lr": 0.2}, {"params": ps[1:]}]

    opt = m.SGD(spec(mine), lr=0.05, momentum=0.9)
    ref = torch.optim.SGD(spec(theirs), lr=0.05, momentum=0.9)
    schedule = m.StepLR(opt, step_size=4, gamma=0.5)
    ref_schedule = torch.optim.lr_scheduler.StepLR(ref, step_size=4, gamma=0.5)
    for _ in range(STEPS):
        for params, optimizer, sched in ((mine, opt, schedule), (theirs, ref, ref_schedule)):
            optimizer.zero_grad()
            _loss(x, y, params).backward()
            optimizer.step()
            sched.step()
    for name, a, b in zip(NAMES, mine, theirs, strict=True):
        assert_close(
            a,
            b,
            what=f"SGD(groups lr 0.2 / 0.05, momentum=0.9) + StepLR(step_size=4, gamma=0.5): "
            f"parameter {name} after {STEPS} steps",
            atol=1e-9,
            rtol=1e-7,
        )


@points(1)
def test_warmup_cosine_drives_adamw():
    """Your AdamW under WarmupCosine against torch's AdamW under transformers' schedule."""
    lrs = _reference_lrs(0.05, 5, STEPS, 0.001)[:STEPS].tolist()
    base = {"lr": 0.05, "weight_decay": 0.3}
    x, y, init = _problem()
    mine = [nn.Parameter(p.clone()) for p in init]
    opt = m.AdamW(mine, **base)
    schedule = m.WarmupCosine(opt, 5, STEPS, 0.001)
    seen = []
    for _ in range(STEPS):
        seen.append(opt.lr)
        opt.zero_grad()
        _loss(x, y, mine).backward()
        opt.step()
        schedule.step()
    assert_close(
        torch.tensor(seen, dtype=torch.float64),
        torch.tensor(lrs, dtype=torch.float64),
        what="optimizer.lr under WarmupCosine(warmup_steps=5, total_steps=25, min_lr=0.001)",
        atol=1e-12,
    )
    theirs = [nn.Parameter(p.clone()) for p in init]
    ref = torch.optim.AdamW(theirs, **base)
    for lr in lrs:
        ref.param_groups[0]["lr"] = lr
        ref.zero_grad()
        _loss(x, y, theirs).backward()
        ref.step()
    for name, a, b in zip(NAMES, mine, theirs, strict=True):
        assert_close(
            a,
            b,
            what=f"AdamW + WarmupCosine: parameter {name} after {STEPS} steps",
            atol=1e-9,
            rtol=1e-7,
        )


# -- the trial ---------------------------------------------------------------------------------


@points(2)
def test_train_trial_learns():
    x, y, x_val, y_val = m.digits_data()
    untrained = m.evaluate(m.make_mlp(32, 0), x_val, y_val)
    still = m.train_trial({"optimizer": "sgd", "lr": 0.0}, 20)
    assert_close(
        torch.tensor(still),
        torch.tensor(untrained),
        atol=1e-6,
        what="train_trial({'optimizer': 'sgd', 'lr': 0.0}, 20): lr 0 must leave make_mlp(32, 0) as it was;"
        " its validation loss",
    )
    trained = m.train_trial({"optimizer": "adam", "lr": 0.01}, 150)
    assert trained < 0.6, (
        f"train_trial({{'optimizer': 'adam', 'lr': 0.01}}, 150) reached validation loss {trained:.3f} (untrained:"
        f" {untrained:.3f}); a working loop gets about 0.25"
    )


def _reference_trial(config: dict, budget: int) -> float:
    """The loop of train_trial's docstring with torch.optim.SGD and transformers' schedule."""
    from transformers.optimization import get_cosine_schedule_with_warmup

    x, y, x_val, y_val = m.digits_data()
    model = m.make_mlp(config["hidden"], config["seed"])
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])
    schedule = get_cosine_schedule_with_warmup(opt, int(config["warmup"] * budget), budget)
    for idx in m.minibatches(len(x), config["batch_size"], budget, config["seed"]):
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
        schedule.step()
    return m.evaluate(model, x_val, y_val)


@points(2)
def test_train_trial_matches_the_loop():
    config = {
        "optimizer": "sgd",
        "lr": 0.2,
        "momentum": 0.9,
        "hidden": 16,
        "batch_size": 32,
        "warmup": 0.25,
        "seed": 3,
    }
    got = m.train_trial(dict(config), 40)
    assert_close(
        torch.tensor(got),
        torch.tensor(_reference_trial(config, 40)),
        atol=1e-4,
        what=f"train_trial({config}, 40): validation loss against the same loop with torch.optim.SGD and "
        "transformers' warmup-cosine schedule (are all config keys used, the schedule stepped after "
        "the optimizer?)",
    )


@points(1)
def test_train_trial_rejects_bad_configs():
    with pytest.raises(Exception) as info:
        m.train_trial({"optimizer": "lbfgs", "lr": 0.1}, 5)
    assert not isinstance(info.value, NotImplementedError), "train_trial is not implemented yet"
    with pytest.raises(TypeError):  # SGD has no betas: must reach the optimizer and fail there
        m.train_trial({"optimizer": "sgd", "lr": 0.1, "betas": (0.9, 0.99)}, 5)


# -- running trials ----------------------------------------------------------------------------


class RecordingExecutor(Executor):
    """A thread pool that remembers what was submitted to it and whether it was shut down."""

    def __init__(self, workers: int = 4):
        self.inner = ThreadPoolExecutor(workers)
        self.submitted: list[tuple] = []
        self.was_shut_down = False

    def submit(self, fn, /, *args, **kwargs):
        self.submitted.append(args)
        return self.inner.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self.was_shut_down = True
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)


def check_trial(trial, config: dict, budget: int, what: str) -> None:
    """The trial records `config`, `budget` and bowl's outcome: a value, NaN or a ValueError."""
    assert trial.config == config and trial.budget == budget, (
        f"{what}: trial has config {trial.config} and budget {trial.budget}, expected {config} and {budget}"
    )
    if config["x"] < 0:
        assert (
            trial.value is None and trial.error is not None and trial.error.startswith("ValueError")
        ), (
            f"{what}: the objective raised ValueError for {config}; expected value None and an error "
            f"'ValueError: ...', got value {trial.value} and error {trial.error!r}"
        )
        return
    expected = helpers.bowl(config, budget)
    assert trial.error is None, (
        f"{what}: trial of {config} failed with {trial.error!r}, but it succeeds"
    )
    assert trial.value is not None and (
        trial.value == expected or math.isnan(expected) and math.isnan(trial.value)
    ), f"{what}: trial of {config} at budget {budget} has value {trial.value}, expected {expected}"


@points(2)
def test_run_trials():
    configs = [
        {"x": 0.5, "delay": 0.3},
        {"x": -1.0, "delay": 0.2},
        {"x": 20.0, "delay": 0.1},
        {"x": 0.2},
    ]
    with RecordingExecutor() as executor:
        trials = m.run_trials(helpers.sleepy, configs, 4, executor)
        assert len(executor.submitted) == len(configs), (
            f"run_trials: {len(executor.submitted)} calls to executor.submit for {len(configs)} configs"
        )
        assert not executor.was_shut_down, "run_trials shut down the executor it was given"
    assert isinstance(trials, list) and len(trials) == len(configs), (
        f"run_trials: expected a list of {len(configs)} Trials, got {type(trials).__name__} of {len(trials)}"
    )
    for i, (trial, config) in enumerate(zip(trials, configs, strict=True)):
        check_trial(trial, config, 4, f"run_trials (trial {i}; they finish in reverse order)")


@points(1)
def test_run_trials_in_parallel():
    """Four trials that each wait until all four are running: submit them all before waiting."""
    helpers.BARRIER = threading.Barrier(4, timeout=10)
    try:
        with ThreadPoolExecutor(4) as executor:
            trials = m.run_trials(helpers.together, [{"x": 0.1 * i} for i in range(4)], 1, executor)
    finally:
        helpers.BARRIER = None
    failed = [t.error for t in trials if t.error]
    assert not failed, (
        f"run_trials: {len(failed)} of 4 trials never saw the others running ({failed[0]}): did you wait for "
        "each result before submitting the next trial?"
    )


@points(2)
def test_grid_search():
    space = {"x": [0.5, -1.0, 0.25], "y": [0.0, 2.0]}
    with RecordingExecutor() as executor:
        result = m.grid_search(helpers.bowl, space, 2, executor)
        assert not executor.was_shut_down, "grid_search shut down the executor it was given"
    expected = [{"x": x, "y": y} for x, y in itertools.product(space["x"], space["y"])]
    got = [t.config for t in result.trials]
    assert got == expected, (
        f"grid_search({space}): configs {got}, expected {expected} (itertools.product order)"
    )
    for i, (trial, config) in enumerate(zip(result.trials, expected, strict=True)):
        check_trial(trial, config, 2, f"grid_search (trial {i})")
    assert result.best.config == {"x": 0.5, "y": 0.0}, (
        f"grid_search: best {result.best}, expected x=0.5, y=0.0"
    )


@pytest.fixture(scope="module")
def pool():
    """Two worker processes (spawned: fresh interpreters), shared by the tests of this file."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context, initializer=helpers.init_worker) as executor:
        yield executor


@points(2)
def test_grid_search_on_processes(pool):
    space = {"x": [0.0, -2.0, 0.5, 12.0], "y": [1.0]}
    result = m.grid_search(helpers.bowl, space, 3, pool)
    for i, (trial, x) in enumerate(zip(result.trials, space["x"], strict=True)):
        check_trial(trial, {"x": x, "y": 1.0}, 3, f"grid_search on a process pool (trial {i})")
    assert result.best.config["x"] == 0.5, (
        f"grid_search on processes: best {result.best}, expected x=0.5"
    )


@points(1)
def test_search_default_executor():
    """executor=None: the trials run in local worker processes (not in this one)."""
    result = m.grid_search(helpers.process_id, {"x": [1]}, 1)
    pids = {t.value for t in result.trials}
    assert all(t.ok for t in result.trials) and float(os.getpid()) not in pids, (
        f"grid_search(..., executor=None): trials ran in processes {pids} (this one is {os.getpid()}), errors "
        f"{[t.error for t in result.trials if t.error]}; expected m.default_executor()'s worker processes"
    )


@points(2)
def test_train_trial_on_processes(pool):
    result = m.grid_search(m.train_trial, {"optimizer": ["adam", "lbfgs"], "lr": [0.01]}, 60, pool)
    adam, lbfgs = result.trials
    assert adam.ok and adam.value < 1.5, (
        f"train_trial(adam, lr 0.01, 60 steps) in a worker process: {adam}"
    )
    assert lbfgs.error is not None and lbfgs.value is None, (
        f"train_trial with optimizer 'lbfgs' should fail and be recorded as failed, got {lbfgs}"
    )


# -- random search -----------------------------------------------------------------------------


@points(2)
def test_log_uniform():
    dist, n = m.LogUniform(1e-4, 1.0), 20_000
    rng = random.Random(0)
    draws = torch.tensor([dist.sample(rng) for _ in range(n)], dtype=torch.float64)
    assert draws.min() >= 1e-4 and draws.max() <= 1.0, (
        f"LogUniform(1e-4, 1.0): draws range over [{draws.min():.3g}, {draws.max():.3g}]"
    )
    per_decade = torch.histc(draws.log10(), bins=4, min=-4, max=0) / n
    assert (per_decade - 0.25).abs().max() < 5 * math.sqrt(0.25 * 0.75 / n), (
        f"LogUniform(1e-4, 1.0): fraction of draws per decade [1e-4, 1e-3), ..., [0.1, 1] is "
        f"{[round(f, 3) for f in per_decade.tolist()]}, expected 0.25 each (is log(x), not x, uniform?)"
    )
    again = random.Random(0)
    assert [dist.sample(again) for _ in range(5)] == draws[:5].tolist(), (
        "LogUniform: same seed, different draws"
    )


SPACE = {
    "optimizer": ["sgd", "adam", "adamw"],
    "lr": m.LogUniform(1e-4, 1e-1),
    "momentum": m.Uniform(0.5, 0.99),
    "hidden": 32,
    "betas": (0.9, 0.99),
}


@points(2)
def test_sample_config():
    rng = random.Random(1)
    configs = [m.sample_config(SPACE, rng) for _ in range(3000)]
    keys = [list(c) for c in configs[:1]]
    assert keys == [list(SPACE)], (
        f"sample_config: keys {keys[0]}, expected {list(SPACE)} in that order"
    )
    for c in configs:
        ok = (
            c["optimizer"] in SPACE["optimizer"]
            and 1e-4 <= c["lr"] <= 1e-1
            and 0.5 <= c["momentum"] <= 0.99
            and c["hidden"] == 32
            and c["betas"] == (0.9, 0.99)
        )
        assert ok, (
            f"sample_config({SPACE}) gave {c}: a list is a choice, a tuple or a number a constant"
        )
    for name in SPACE["optimizer"]:
        share = sum(c["optimizer"] == name for c in configs) / len(configs)
        assert abs(share - 1 / 3) < 0.05, (
            f"sample_config: optimizer {name!r} chosen {share:.1%} of the time, not 1/3"
        )
    low = sum(c["lr"] < 1e-3 for c in configs) / len(configs)
    assert abs(low - 1 / 3) < 0.05, (
        f"sample_config: lr below 1e-3 {low:.1%} of the time, expected 1/3 (LogUniform)"
    )
    again = random.Random(1)
    assert [m.sample_config(SPACE, again) for _ in range(3)] == configs[:3], (
        "sample_config: same seed, other draws"
    )


@points(2)
def test_random_search():
    space = {"x": m.Uniform(-0.5, 1.0), "y": [0.0, 1.0]}
    with RecordingExecutor() as executor:
        result = m.random_search(helpers.bowl, space, 8, 2, seed=5, executor=executor)
        again = m.random_search(helpers.bowl, space, 8, 2, seed=5, executor=executor)
        other = m.random_search(helpers.bowl, space, 8, 2, seed=6, executor=executor)
        assert not executor.was_shut_down, "random_search shut down the executor it was given"
    rng = random.Random(5)
    expected = [m.sample_config(space, rng) for _ in range(8)]
    got = [t.config for t in result.trials]
    assert got == expected, (
        "random_search(seed=5): configs differ from sample_config(space, rng) drawn 8 times with "
        f"rng = random.Random(5): got {got[:2]}..., expected {expected[:2]}..."
    )
    assert [t.config for t in again.trials] == got, (
        "random_search: the same seed gave other configs"
    )
    assert [t.config for t in other.trials] != got, (
        "random_search: seeds 5 and 6 gave the same configs"
    )
    for i, (trial, config) in enumerate(zip(result.trials, expected, strict=True)):
        check_trial(trial, config, 2, f"random_search (trial {i})")
    assert any(t.error for t in result.trials), "this seed should have drawn some failing x < 0"


# -- successive halving ------------------------------------------------------------------------


def check_halving(result, configs: list[dict], min_budget: int, eta: int) -> list[int]:
    """Check the rounds recorded in `result` against the rule; returns the round sizes."""
    trials, current, budget, sizes, k = list(result.trials), list(configs), min_budget, [], 0
    while current:
        round_ = trials[: len(current)]
        trials = trials[len(current) :]
        got = [t.config for t in round_]
        assert got == current, (
            f"successive_halving(n={len(configs)}, min_budget={min_budget}, eta={eta}): round {k} ran configs "
            f"{got}, expected {current}"
        )
        for trial, config in zip(round_, current, strict=True):
            check_trial(trial, config, budget, f"successive_halving round {k} (budget {budget})")
        sizes.append(len(current))
        ranked = sorted((t for t in round_ if t.ok), key=lambda t: t.value)
        if len(current) == 1:
            break
        current = [t.config for t in ranked[: max(1, len(current) // eta)]]
        budget, k = budget * eta, k + 1
    assert not trials, (
        f"successive_halving(n={len(configs)}, eta={eta}): {len(trials)} trials after the last round "
        f"(rounds of sizes {sizes}), e.g. {trials[0]}"
    )
    return sizes


XS = [
    -0.5,
    0.0,
    0.1,
    0.2,
    11.0,
    0.5,
    0.8,
    1.0,
    1.15,
]  # one failing, one NaN; the best x moves with budget


@points(3)
def test_successive_halving():
    configs = [{"x": x} for x in XS]
    with RecordingExecutor() as executor:
        result = m.successive_halving(helpers.bowl, configs, 1, 3, executor)
        assert not executor.was_shut_down, "successive_halving shut down the executor it was given"
    spent = sum(t.budget for t in result.trials)
    sizes = check_halving(result, configs, 1, 3)
    assert sizes == [9, 3, 1] and spent == 27, (
        f"successive_halving(9 configs, eta=3): rounds {sizes}, spent {spent}"
    )
    assert result.best.config == {"x": 0.8} and result.best.budget == 9, (
        f"successive_halving: best {result.best}, expected x=0.8 at budget 9 (x=1.0 leads at budget 1 only)"
    )


@points(2)
@pytest.mark.parametrize(
    "n,eta,min_budget",
    [(8, 2, 1), (5, 2, 3), (10, 3, 2), (1, 2, 4), (2, 3, 1), (5, 3, 2), (3, 4, 1)],
)
def test_successive_halving_budget(n, eta, min_budget):
    configs = [{"x": 0.05 * i} for i in range(n)]
    with RecordingExecutor() as executor:
        result = m.successive_halving(helpers.bowl, configs, min_budget, eta, executor)
        submitted = len(executor.submitted)
    sizes = check_halving(result, configs, min_budget, eta)
    expected = [n]
    while expected[-1] > 1:
        expected.append(max(1, expected[-1] // eta))
    spent, planned = (
        sum(t.budget for t in result.trials),
        sum(s * min_budget * eta**k for k, s in enumerate(expected)),
    )
    assert sizes == expected and spent == planned and submitted == sum(expected), (
        f"successive_halving(n={n}, eta={eta}, min_budget={min_budget}): rounds of {sizes} configs "
        f"({submitted} submitted), budget spent {spent}; expected rounds {expected} spending {planned}"
    )


@points(1)
def test_successive_halving_with_failures():
    with RecordingExecutor() as executor:
        mostly = m.successive_halving(
            helpers.bowl, [{"x": -1.0}, {"x": 0.3}, {"x": 20.0}, {"x": -2.0}], 1, 2, executor
        )
        none = m.successive_halving(
            helpers.bowl, [{"x": -1.0}, {"x": -2.0}, {"x": 15.0}], 1, 2, executor
        )
    sizes = check_halving(mostly, [{"x": -1.0}, {"x": 0.3}, {"x": 20.0}, {"x": -2.0}], 1, 2)
    assert sizes == [4, 1], (
        f"successive_halving with 3 of 4 failing: rounds {sizes}, expected [4, 1]"
    )
    assert len(none.trials) == 3 and none.best is None, (
        f"successive_halving where every trial fails: {len(none.trials)} trials and best {none.best}; expected "
        "one round of 3 and no best"
    )


@points(1)
def test_successive_halving_rounds_in_parallel():
    helpers.BARRIER = threading.Barrier(4, timeout=10)
    try:
        with ThreadPoolExecutor(4) as executor:
            result = m.successive_halving(
                helpers.together, [{"x": 0.1 * i} for i in range(4)], 1, 2, executor
            )
    finally:
        helpers.BARRIER = None
    failed = [t.error for t in result.trials if t.error]
    assert not failed, (
        f"successive_halving: trials of the first round did not run at the same time ({failed[0]})"
    )


@points(2)
def test_successive_halving_on_processes(pool):
    configs = [{"x": x} for x in XS]
    result = m.successive_halving(helpers.bowl, configs, 1, 3, pool)
    assert check_halving(result, configs, 1, 3) == [9, 3, 1]
    assert result.best.config == {"x": 0.8}, f"successive_halving on processes: best {result.best}"


# -- a Dask cluster as the executor ------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster():
    """Two Dask worker processes of one thread each on this machine: the same scheduler and
    workers the organizers start on the GPU machines (`dask scheduler`, `dask worker ...`)."""
    distributed = pytest.importorskip(
        "dask.distributed", reason="dask is not installed: pip install 'dask[distributed]'"
    )
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
    ) as cluster:
        yield cluster


def _same_value(a: float | None, b: float | None) -> bool:
    return a == b or (a is not None and b is not None and math.isnan(a) and math.isnan(b))


@points(2)
@pytest.mark.slow
def test_searches_on_a_dask_cluster(dask_cluster, pool):
    """grid_search and successive_halving on a Dask cluster's executor give the process pool's
    trials: the same configs, values and errors (a failing trial recorded, not fatal)."""
    from dask.distributed import Client

    space = {"x": [0.0, -2.0, 0.5, 12.0], "y": [1.0, 0.5]}
    configs = [{"x": x} for x in XS]
    with Client(dask_cluster) as client:
        executor = client.get_executor()
        grid = m.grid_search(helpers.bowl, space, 3, executor)
        halving = m.successive_halving(helpers.bowl, configs, 1, 3, executor)
        trials = m.grid_search(
            m.train_trial, {"optimizer": ["adam", "lbfgs"], "lr": [0.01]}, 30, executor
        )
    local = {
        "grid_search": m.grid_search(helpers.bowl, space, 3, pool),
        "successive_halving": m.successive_halving(helpers.bowl, configs, 1, 3, pool),
        "grid_search(train_trial)": m.grid_search(
            m.train_trial, {"optimizer": ["adam", "lbfgs"], "lr": [0.01]}, 30, pool
        ),
    }
    for (what, theirs), ours in zip(local.items(), (grid, halving, trials), strict=True):
        got = [(t.config, t.budget, t.value, t.error) for t in ours.trials]
        expected = [(t.config, t.budget, t.value, t.error) for t in theirs.trials]
        same = len(got) == len(expected) and all(
            g[:2] == e[:2] and _same_value(g[2], e[2]) and (g[3] is None) == (e[3] is None)
            for g, e in zip(got, expected, strict=False)
        )
        assert same, (
            f"{what} on a Dask cluster: trials (config, budget, value, error) {got[:3]}... differ from "
            f"the process pool's {expected[:3]}..."
        )
    for i, (trial, x) in enumerate(zip(grid.trials[::2], space["x"], strict=True)):
        check_trial(trial, {"x": x, "y": 1.0}, 3, f"grid_search on Dask (trial {2 * i})")
    assert trials.trials[1].error is not None, (
        "train_trial with 'lbfgs' on Dask: not recorded as failed"
    )


@points(1)
@pytest.mark.slow
def test_search_executor_reads_the_environment(dask_cluster, monkeypatch):
    """search_executor(): the cluster at $MLAB_DASK_SCHEDULER when it is set, else local processes."""
    from dask.distributed import Client

    monkeypatch.setenv("MLAB_DASK_SCHEDULER", dask_cluster.scheduler_address)
    with m.search_executor() as executor:
        result = m.grid_search(helpers.process_id, {"x": [1, 2, 3, 4]}, 1, executor)
    with Client(dask_cluster) as client:
        workers = {float(pid) for pid in client.run(os.getpid).values()}
    pids = {t.value for t in result.trials}
    assert all(t.ok for t in result.trials) and pids <= workers, (
        f"grid_search through search_executor() with MLAB_DASK_SCHEDULER set ran its trials in processes "
        f"{pids}, errors {[t.error for t in result.trials if t.error]}; the Dask workers are {workers}"
    )
    monkeypatch.delenv("MLAB_DASK_SCHEDULER")
    with m.search_executor(1) as executor:
        assert isinstance(executor, ProcessPoolExecutor), (
            f"search_executor() without MLAB_DASK_SCHEDULER gave {type(executor).__name__}, expected "
            "default_executor()'s process pool"
        )
