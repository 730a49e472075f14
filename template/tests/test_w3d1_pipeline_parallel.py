"""Graders for day w3d1_pipeline_parallel: your pipeline on 2, 3 and 4 real processes.

The pure parts (splitting, schedules, the bubble, the simulator, a one-stage pipeline) run in
the test process. The distributed tests start 2 to 4 worker processes joined in a gloo process
group, one pipeline stage each, run your code on every rank and bring back each stage's loss,
gradients and trace (which micro-batch each stage ran when, and how many it held), which are
compared here with one process running the whole model on the whole batch, in float64. An
error on any rank fails the test with that rank's message and the line of your code that raised
it; ranks that wait for each other (a deadlock) are reported after a few seconds.

Run one exercise with `pytest tests/test_w3d1_pipeline_parallel.py -k one_f_one_b`.
"""

from __future__ import annotations

import pytest
import torch
import w3d1_pipeline_parallel_helpers as h
from checks import assert_close, assert_equal
from mlab import w3d1_pipeline_parallel as m
from torch import nn

points = pytest.mark.points
h.prestart()  # the worker processes' fork server imports torch in the background meanwhile

ATOL, RTOL = 1e-10, 1e-8  # float64 all the way: a pipeline changes only the order of the sums
_RUNS: dict = {}


def run(job: str, world_size: int, **kwargs) -> list[dict]:
    """One multi-process run per (job, arguments), shared by the tests that check its results."""
    key = (job, world_size, repr(sorted(kwargs.items())))
    if key not in _RUNS:
        try:
            _RUNS[key] = ("ok", h.run(job, world_size, **kwargs))
        except NotImplementedError as exc:
            _RUNS[key] = ("todo", str(exc))
        except h.WorkerFailure as exc:
            _RUNS[key] = ("failed", str(exc))
    status, value = _RUNS[key]
    if status == "todo":
        raise NotImplementedError(value)
    if status == "failed":
        pytest.fail(value, pytrace=False)
    return value


def part(results: list[dict], key: str) -> list:
    """Each rank's result for one part of a job; a stub met on any rank is this test's stub."""
    world_size = len(results)
    for rank, res in enumerate(results):
        if "todo" in res[key]:
            raise NotImplementedError(f"{res[key]['todo']} (raised on rank {rank} of {world_size})")
    errors = {rank: res[key] for rank, res in enumerate(results) if "error" in res[key]}
    if errors:
        pytest.fail(h.describe_failure(errors, world_size), pytrace=False)
    skipped = [res[key]["skipped"] for res in results if "skipped" in res[key]]
    if skipped:
        pytest.fail(
            f"not run: part {skipped[0]!r} of the same run failed before it (see that test)",
            pytrace=False,
        )
    return [res[key]["ok"] for res in results]


def expect(condition: bool, message: str) -> None:
    """Fail with `message` alone (no dump of the objects in the condition)."""
    if not condition:
        pytest.fail(message, pytrace=False)


def ops_of(schedule) -> list[tuple[str, int]]:
    return [(str(kind), int(i)) for kind, i in schedule]


def fmt(ops: list[tuple[str, int]]) -> str:
    return " ".join(f"{k}{i}" for k, i in ops)


# -- splitting ---------------------------------------------------------------------------------


def layers_model(n_layers: int) -> nn.Sequential:
    return nn.Sequential(*(nn.Linear(2, 2) for _ in range(n_layers)))


@points(1)
@pytest.mark.parametrize("n_layers,n_stages", [(6, 1), (6, 2), (6, 4), (7, 3), (5, 5)])
def test_split_stages(n_layers, n_stages):
    model = layers_model(n_layers)
    stages = m.split_stages(model, n_stages)
    what = f"split_stages(a Sequential of {n_layers} layers, n_stages={n_stages})"
    expect(
        isinstance(stages, list | tuple) and len(stages) == n_stages,
        f"{what}: expected a list of {n_stages} stages",
    )
    expect(
        all(isinstance(s, nn.Sequential) for s in stages),
        f"{what}: every stage must be an nn.Sequential of its layers",
    )
    sizes = [len(s) for s in stages]
    flat = [layer for s in stages for layer in s]
    expect(
        len(flat) == n_layers and all(a is b for a, b in zip(flat, model, strict=True)),
        f"{what}: stage sizes {sizes}; the stages' layers in order must be the model's own layers "
        "(the same objects, not copies), each exactly once",
    )
    expect(
        max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True) and min(sizes) > 0,
        f"{what}: stage sizes {sizes}; they must differ by at most one, earlier stages taking "
        "the extra layers",
    )


@points(1)
def test_split_stages_rejects():
    model = layers_model(4)
    for n_stages in (0, 5):
        with pytest.raises(ValueError):
            m.split_stages(model, n_stages)


@points(1)
@pytest.mark.parametrize("n,n_micro", [(8, 4), (10, 4), (7, 3), (5, 5), (6, 1)])
def test_split_micro_batches(n, n_micro):
    x = torch.randn(n, 3)
    pieces = m.split_micro_batches(x, n_micro)
    what = f"split_micro_batches(a batch of {n}, n_micro={n_micro})"
    expect(len(pieces) == n_micro, f"{what}: got {len(pieces)} micro-batches")
    sizes = [len(p) for p in pieces]
    assert_equal(torch.cat(list(pieces)), x, what=f"{what}: the micro-batches concatenated")
    expect(
        max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True),
        f"{what}: sizes {sizes}; they must differ by at most one, earlier ones taking the extras",
    )
    y = torch.arange(n)
    assert_equal(
        torch.cat(list(m.split_micro_batches(y, n_micro))),
        y,
        what=f"{what} on 1-D targets, concatenated",
    )


@points(1)
@pytest.mark.parametrize("n,n_micro", [(6, 7), (6, 0)])
def test_split_micro_batches_rejects(n, n_micro):
    with pytest.raises(ValueError) as info:
        m.split_micro_batches(torch.randn(n, 3), n_micro)
    text = str(info.value)
    expect(
        str(n) in text and str(n_micro) in text,
        f"split_micro_batches(a batch of {n}, n_micro={n_micro}) raised ValueError({text!r}); "
        "say which batch size and micro-batch count do not fit",
    )


# -- schedules: the rules ----------------------------------------------------------------------

GRID = [(1, 3), (2, 1), (2, 4), (3, 2), (3, 5), (4, 4), (4, 7)]


def check_every_op_once(ops, n_micro: int, what: str) -> None:
    forwards = [i for k, i in ops if k == "F"]
    backwards = [i for k, i in ops if k == "B"]
    expect(
        len(forwards) + len(backwards) == len(ops),
        f"{what}: {fmt(ops)}: every op is ('F', i) or ('B', i)",
    )
    expect(
        forwards == list(range(n_micro)),
        f"{what}: {fmt(ops)}: the forwards must be F0 .. F{n_micro - 1}, once each, in order",
    )
    expect(
        backwards == list(range(n_micro)),
        f"{what}: {fmt(ops)}: the backwards must be B0 .. B{n_micro - 1}, once each, in order",
    )


def in_flight(ops) -> list[int]:
    """Micro-batches forwarded but not yet backwarded, after each op."""
    counts, held = [], 0
    for kind, _ in ops:
        held += 1 if kind == "F" else -1
        counts.append(held)
    return counts


def check_gpipe_rules(ops, n_stages: int, n_micro: int, stage: int, what: str) -> None:
    check_every_op_once(ops, n_micro, what)
    expect(
        all(k == "F" for k, _ in ops[:n_micro]),
        f"{what}: {fmt(ops)}: GPipe runs all {n_micro} forwards before the first backward",
    )


def check_one_f_one_b_rules(ops, n_stages: int, n_micro: int, stage: int, what: str) -> None:
    check_every_op_once(ops, n_micro, what)
    warm = min(n_stages - stage - 1, n_micro)
    first_b = next(j for j, (k, _) in enumerate(ops) if k == "B")
    expect(
        first_b == min(warm + 1, n_micro),
        f"{what}: {fmt(ops)}: stage {stage} of {n_stages} runs {first_b} forwards before its first "
        f"backward; 1F1B warms up with min(S - s - 1, m) = {warm} forwards, then alternates "
        "one forward, one backward",
    )
    steady = ops[first_b - 1 : 2 * n_micro - warm]  # F B F B ... while forwards remain
    expect(
        all(k == ("F" if j % 2 == 0 else "B") for j, (k, _) in enumerate(steady)),
        f"{what}: {fmt(ops)}: after the warm-up, forwards and backwards must alternate until the "
        "forwards run out, then the remaining backwards drain",
    )
    peak, bound = max(in_flight(ops)), min(n_stages - stage, n_micro)
    expect(
        peak == bound,
        f"{what}: {fmt(ops)}: stage {stage} holds up to {peak} micro-batches at once; 1F1B holds "
        f"min(S - s, m) = {bound}",
    )


@points(1)
@pytest.mark.parametrize("n_stages,n_micro", GRID)
def test_gpipe_schedule(n_stages, n_micro):
    for stage in range(n_stages):
        ops = ops_of(m.gpipe_schedule(n_stages, n_micro, stage))
        what = f"gpipe_schedule(n_stages={n_stages}, n_micro={n_micro}, stage={stage})"
        check_gpipe_rules(ops, n_stages, n_micro, stage, what)


@points(1)
@pytest.mark.parametrize("n_stages,n_micro", GRID)
def test_one_f_one_b_schedule(n_stages, n_micro):
    for stage in range(n_stages):
        ops = ops_of(m.one_f_one_b_schedule(n_stages, n_micro, stage))
        what = f"one_f_one_b_schedule(n_stages={n_stages}, n_micro={n_micro}, stage={stage})"
        check_one_f_one_b_rules(ops, n_stages, n_micro, stage, what)


# -- the bubble and the simulator --------------------------------------------------------------

BUBBLE_GRID = [(s, n) for s in (1, 2, 3, 4, 8) for n in (1, 2, 4, 7, 32)]


@points(1)
def test_bubble_fraction(snapshot):
    values = torch.tensor([float(m.bubble_fraction(s, n)) for s, n in BUBBLE_GRID])
    snapshot.check("values", values.double(), atol=1e-12)


def makespan_and_bubble(schedules, starts, t_f: float, t_b: float) -> tuple[float, float]:
    durations = {"F": t_f, "B": t_b}
    ends = [
        st + durations[k]
        for ops, sts in zip(schedules, starts, strict=True)
        for (k, _), st in zip(ops, sts, strict=True)
    ]
    span = max(ends)
    busy = sum(durations[k] for ops in schedules for k, _ in ops)
    return span, 1 - busy / (len(schedules) * span)


@points(2)
@pytest.mark.parametrize("t_f,t_b", [(1.0, 2.0), (1.5, 0.5)])
def test_simulate_schedule(t_f, t_b):
    """On random orders that respect the dependencies, every op starts as early as it can."""
    for seed, (n_stages, n_micro) in enumerate([(1, 3), (2, 3), (3, 4), (4, 2), (4, 5)]):
        schedules = h.random_feasible_schedules(n_stages, n_micro, seed)
        starts = m.simulate_schedule(schedules, t_f, t_b)
        what = (
            f"simulate_schedule(S={n_stages}, m={n_micro}, t_forward={t_f}, t_backward={t_b}) "
            "on a random feasible order"
        )
        expect(
            len(starts) == n_stages
            and all(len(st) == len(ops) for st, ops in zip(starts, schedules, strict=True)),
            f"{what}: expected one start time per op, shaped like the schedules",
        )
        durations = {"F": t_f, "B": t_b}
        end = {}
        for s, (ops, sts) in enumerate(zip(schedules, starts, strict=True)):
            for (k, i), st in zip(ops, sts, strict=True):
                end[(k, s, i)] = float(st) + durations[k]
        for s, (ops, sts) in enumerate(zip(schedules, starts, strict=True)):
            previous = 0.0
            for (k, i), st in zip(ops, sts, strict=True):
                needs = [("F", s - 1, i)] if k == "F" and s > 0 else []
                if k == "B":
                    needs = [("F", s, i)] + ([("B", s + 1, i)] if s < n_stages - 1 else [])
                earliest = max([previous, *(end[n] for n in needs)])
                expect(
                    abs(float(st) - earliest) < 1e-9,
                    f"{what}: stage {s} order {fmt(ops)}: {k}{i} starts at {float(st):g}; the "
                    f"previous op of the stage and the ops it needs ({needs}) let it start at "
                    f"{earliest:g}",
                )
                previous = end[(k, s, i)]


@points(1)
def test_simulate_schedule_deadlock():
    cases = {
        "stage 0: B0 before F0": [[("B", 0), ("F", 0)]],
        "stage 1 runs F1 before F0, stage 0 runs B0 before F1": [
            [("F", 0), ("B", 0), ("F", 1), ("B", 1)],
            [("F", 1), ("F", 0), ("B", 0), ("B", 1)],
        ],
    }
    for name, schedules in cases.items():
        try:
            m.simulate_schedule(schedules)
        except ValueError:
            continue
        pytest.fail(
            f"simulate_schedule on an order that can never run ({name}) returned instead of "
            "raising ValueError (a deadlock)",
            pytrace=False,
        )


# -- a pipeline of one stage: no communication -------------------------------------------------


@points(2)
@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_single_stage_pipeline(schedule):
    """S = 1: the whole model in one stage, the batch in uneven micro-batches (10 into 4)."""
    model = h.make_model()
    stage = m.PipelineStage(model, 0, 1, h.D_MODEL)
    x, y = h.make_batch(10)
    loss = m.pipeline_step(stage, x, y, 4, schedule)
    ref = h.reference(10)
    what = f"pipeline_step(one stage, batch of 10, n_micro=4, schedule={schedule!r})"
    expect(isinstance(loss, float), f"{what} returned {type(loss).__name__}; expected a float")
    assert_close(
        torch.tensor(loss),
        torch.tensor(ref["loss"]),
        atol=ATOL,
        rtol=RTOL,
        what=f"{what}: the loss vs the whole batch's mean loss (each micro-batch's mean loss "
        "times its size / batch size, summed)",
    )
    for name, p in model.named_parameters():
        expect(p.grad is not None, f"{what}: {name}.grad is None after the step")
        assert_close(
            p.grad,
            ref["grads"][name],
            atol=ATOL,
            rtol=RTOL,
            what=f"{what}: {name}.grad vs the whole batch's gradient (each micro-batch's loss "
            "scaled by its size / batch size, gradients accumulated over micro-batches)",
        )
    expect(
        not stage.inputs and not stage.outputs,
        f"{what}: {len(stage.outputs)} micro-batches left in stage.outputs; backward_step frees them",
    )


@points(1)
def test_pipeline_step_rejects_too_many_micro_batches():
    stage = m.PipelineStage(h.make_model(), 0, 1, h.D_MODEL)
    x, y = h.make_batch(6)
    with pytest.raises(ValueError):
        m.pipeline_step(stage, x, y, 7, "gpipe")


# -- send and receive between stages (3 processes) ---------------------------------------------

COMM_SHAPES = [(3, 8), (1, 8), (2, 5)]


@points(2)
def test_send_recv_forward():
    results = part(run("comm", 3, shapes=COMM_SHAPES), "forward")
    for rank in (1, 2):
        for case, shape in enumerate(COMM_SHAPES):
            got = results[rank][case]
            what = f"rank {rank} of 3: recv_forward({shape}) after rank {rank - 1}'s send_forward"
            assert_close(
                got["value"],
                h.fwd_tensor(rank - 1, case, shape),
                atol=0,
                rtol=0,
                what=f"{what} (the previous rank's activation)",
            )
            expect(
                got["requires_grad"] and got["is_leaf"],
                f"{what}: requires_grad={got['requires_grad']}, is_leaf={got['is_leaf']}; the "
                "received activation must be a leaf that requires grad, or backward through "
                "this stage never computes the gradient the previous stage needs",
            )


@points(2)
def test_send_recv_backward():
    results = part(run("comm", 3, shapes=COMM_SHAPES), "backward")
    for rank in (0, 1):
        for case, shape in enumerate(COMM_SHAPES):
            assert_close(
                results[rank][case],
                h.bwd_tensor(rank + 1, case, shape),
                atol=0,
                rtol=0,
                what=f"rank {rank} of 3: recv_backward({shape}) after rank {rank + 1}'s "
                "send_backward (the next rank's gradient)",
            )


# -- the pipeline on 2, 3 and 4 processes -------------------------------------------------------

CASES = {  # world size -> (n, n_micro) batches run with each schedule
    2: [(8, 4), (7, 3)],
    3: [(9, 3), (10, 4)],
    4: [(10, 4), (6, 2), (8, 8)],
}


def pipeline_run(world_size: int) -> list[dict]:
    cases = [(sch, n, k) for sch in ("gpipe", "1f1b") for n, k in CASES[world_size]]
    return run("pipeline", world_size, cases=cases, steps=world_size < 4)


def check_against_single_process(results, world_size: int, n: int, what: str) -> None:
    ref = h.reference(n)
    last = results[-1]
    expect(
        isinstance(last["loss"], float),
        f"{what}: the last stage returned {last['loss']!r}; expected the batch's loss",
    )
    assert_close(
        torch.tensor(last["loss"]),
        torch.tensor(ref["loss"]),
        atol=ATOL,
        rtol=RTOL,
        what=f"{what}: the last stage's loss vs the whole batch's mean loss (each micro-batch's "
        "mean loss times its size / batch size, summed)",
    )
    for rank, res in enumerate(results):
        expect(
            rank == world_size - 1 or res["loss"] is None,
            f"{what}: rank {rank} returned a loss; only the last stage has one (return None)",
        )
        for name, grad in res["grads"].items():
            expect(
                grad is not None,
                f"{what}: rank {rank}: {name}.grad is None. Did its backward run? Does the "
                "received activation require grad, and does the gradient reach this stage?",
            )
            assert_close(
                grad,
                ref["grads"][name],
                atol=ATOL,
                rtol=RTOL,
                what=f"{what}: rank {rank}: {name}.grad vs the single-process gradient of the "
                "whole batch (loss scaled by micro-batch size / batch size? accumulated, never "
                "zeroed, over the micro-batches?)",
            )
        expect(
            res["left"] == [0, 0],
            f"{what}: rank {rank} still holds {res['left'][1]} micro-batches' activations after "
            "the step: backward_step must pop them from stage.inputs and stage.outputs",
        )


@points(2)
@pytest.mark.parametrize("world_size", [2, 3])
def test_stage_forward_backward_steps(world_size):
    """F0 F1 B0 B1 run by hand with forward_step / backward_step (a batch of 6, scale 1/2)."""
    results = part(pipeline_run(world_size), "steps")
    what = f"{world_size} stages, forward_step(0), forward_step(1), backward_step(0), (1)"
    for rank, res in enumerate(results):
        last = rank == world_size - 1
        expect(
            res["returned"] == [last, last],
            f"{what}: rank {rank}'s forward_step returned "
            f"{['a loss' if r else 'None' for r in res['returned']]}; only the last stage "
            "returns its scaled loss",
        )
    check_against_single_process(results, world_size, 6, what)


PIPELINE_PARAMS = [(w, n, k) for w, cases in CASES.items() for n, k in cases]


@points(2)
@pytest.mark.parametrize("world_size,n,n_micro", PIPELINE_PARAMS)
def test_gpipe_matches_single_process(world_size, n, n_micro):
    results = part(pipeline_run(world_size), f"gpipe:{n}:{n_micro}")
    what = f"GPipe on {world_size} stages, batch of {n} in {n_micro} micro-batches"
    check_against_single_process(results, world_size, n, what)


@points(2)
@pytest.mark.parametrize("world_size,n,n_micro", PIPELINE_PARAMS)
def test_one_f_one_b_matches_single_process(world_size, n, n_micro):
    results = part(pipeline_run(world_size), f"1f1b:{n}:{n_micro}")
    what = f"1F1B on {world_size} stages, batch of {n} in {n_micro} micro-batches"
    check_against_single_process(results, world_size, n, what)


def check_trace(world_size: int, schedule: str) -> None:
    rules = {"gpipe": check_gpipe_rules, "1f1b": check_one_f_one_b_rules}[schedule]
    runs = pipeline_run(world_size)
    for n, n_micro in CASES[world_size]:
        results = part(runs, f"{schedule}:{n}:{n_micro}")
        for rank, res in enumerate(results):
            ops = ops_of(res["ops"])
            what = (
                f"{schedule} on {world_size} stages, {n_micro} micro-batches: rank {rank} ran "
                "(forward_step / backward_step, in order)"
            )
            rules(ops, world_size, n_micro, rank, what)
            bound = n_micro if schedule == "gpipe" else min(world_size - rank, n_micro)
            expect(
                max(res["held"]) == bound,
                f"{what} {fmt(ops)} and held at most {max(res['held'])} micro-batches in "
                f"stage.outputs; expected {bound}: store each forward's activations until its "
                "backward, then free them",
            )


@points(2)
@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_gpipe_trace(world_size):
    check_trace(world_size, "gpipe")


@points(2)
@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_one_f_one_b_trace(world_size):
    check_trace(world_size, "1f1b")


@points(2)
@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_measured_bubble(world_size):
    """The traces of the real runs, timed by your simulator (t_b = 2 t_f), against the formula."""
    runs = pipeline_run(world_size)
    for schedule in ("gpipe", "1f1b"):
        for n, n_micro in CASES[world_size]:
            results = part(runs, f"{schedule}:{n}:{n_micro}")
            schedules = [ops_of(res["ops"]) for res in results]
            starts = m.simulate_schedule(schedules, 1.0, 2.0)
            span, measured = makespan_and_bubble(schedules, starts, 1.0, 2.0)
            formula = m.bubble_fraction(world_size, n_micro)
            expect(
                abs(measured - formula) < 1e-9,
                f"{schedule} on {world_size} stages with {n_micro} micro-batches: the recorded "
                f"trace lasts {span:g} (t_f = 1, t_b = 2) and leaves {measured:.4f} of the "
                f"stage-time idle; bubble_fraction({world_size}, {n_micro}) = {formula:.4f}",
            )
