"""Figures for docs/w3d1_pipeline_parallel.md, drawn from traces of the reference solutions.

Run from the repository root: `python docs/scripts/w3d1_pipeline_parallel.py` (or `nox -s figures`).

The script runs the solution's `pipeline_step` on 4 gloo processes (one stage each, a batch of
16 in 8 micro-batches), once with GPipe and once with 1F1B, and records the order in which each
stage ran its `forward_step` / `backward_step` calls. The solution's `simulate_schedule` then
times those traces with t_b = 2 t_f: what is drawn is what the code did.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "solutions"))
from mlab import w3d1_pipeline_parallel as m  # noqa: E402

IMG = ROOT / "docs" / "img"
S, N, M = 4, 16, 8  # stages, batch, micro-batches
T_F, T_B = 1.0, 2.0
F_COLOR, B_COLOR = "#4c72b0", "#dd8452"


def worker(rank: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=S)
    traces = {}
    for schedule in ("gpipe", "1f1b"):
        model = m.make_model(n_blocks=6, seed=0)
        stage = m.PipelineStage(m.split_stages(model, S)[rank], rank, S, d_model=8)
        ops = []
        fwd, bwd = stage.forward_step, stage.backward_step

        def forward_step(i, *args, _fwd=fwd, _ops=ops):
            _ops.append(("F", i))
            return _fwd(i, *args)

        def backward_step(i, _bwd=bwd, _ops=ops):
            _ops.append(("B", i))
            return _bwd(i)

        stage.forward_step, stage.backward_step = forward_step, backward_step
        g = torch.Generator().manual_seed(0)
        x = torch.randn(N, 5, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (N,), generator=g)
        m.pipeline_step(stage, x, y, M, schedule)
        traces[schedule] = ops
    torch.save(traces, Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


def record_traces() -> dict[str, list[list[m.Op]]]:
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(worker, args=(str(Path(tmp) / "store"), tmp), nprocs=S)
        per_rank = [torch.load(Path(tmp) / f"rank{r}.pt") for r in range(S)]
    return {k: [per_rank[r][k] for r in range(S)] for k in ("gpipe", "1f1b")}


def draw_gantt(ax, schedules: list[list[m.Op]], title: str) -> float:
    starts = m.simulate_schedule(schedules, T_F, T_B)
    span = 0.0
    for s, (ops, sts) in enumerate(zip(schedules, starts, strict=True)):
        for (kind, i), t in zip(ops, sts, strict=True):
            d = T_F if kind == "F" else T_B
            color = F_COLOR if kind == "F" else B_COLOR
            ax.add_patch(Rectangle((t, s - 0.4), d, 0.8, facecolor=color, edgecolor="white"))
            ax.text(t + d / 2, s, str(i), ha="center", va="center", color="white", fontsize=8)
            span = max(span, t + d)
    ax.set_xlim(0, span)
    ax.set_ylim(S - 0.5, -0.5)
    ax.set_yticks(range(S), [f"stage {s}" for s in range(S)])
    busy = sum(T_F * M + T_B * M for _ in range(S))
    ax.set_title(f"{title}: step lasts {span:g}, bubble {1 - busy / (S * span):.0%}", fontsize=10)
    return span


def held_over_time(ops: list[m.Op], starts: list[float]) -> tuple[list[float], list[int]]:
    times, counts, held = [0.0], [0], 0
    for (kind, _), t in zip(ops, starts, strict=True):
        held += 1 if kind == "F" else -1
        end = t + (T_F if kind == "F" else T_B)
        times.append(end if kind == "F" else t)
        counts.append(held)
    return times, counts


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    traces = record_traces()

    fig, axes = plt.subplots(2, 1, figsize=(9, 4.2), sharex=True)
    draw_gantt(axes[0], traces["gpipe"], f"GPipe, S = {S}, m = {M}")
    draw_gantt(axes[1], traces["1f1b"], f"1F1B, S = {S}, m = {M}")
    axes[1].set_xlabel("time (forward = 1, backward = 2); blue F, orange B, number = micro-batch")
    fig.tight_layout()
    fig.savefig(IMG / "w3d1_pipeline_parallel_schedules.png", dpi=90)
    plt.close(fig)

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, style in (("gpipe", "-"), ("1f1b", "--")):
        schedules = traces[name]
        starts = m.simulate_schedule(schedules, T_F, T_B)
        for s in (0, S - 1):
            times, counts = held_over_time(schedules[s], starts[s])
            left.step(times, counts, style, where="post", label=f"{name}, stage {s}")
    left.set_xlabel("time")
    left.set_ylabel("micro-batches held")
    left.set_title("activations a stage holds", fontsize=10)
    left.legend(fontsize=8)
    micro = list(range(1, 33))
    for n_stages in (2, 4, 8):
        right.plot(micro, [m.bubble_fraction(n_stages, k) for k in micro], label=f"S = {n_stages}")
        measured = [
            (
                k,
                m.simulate_schedule(
                    [m.one_f_one_b_schedule(n_stages, k, s) for s in range(n_stages)]
                ),
            )
            for k in (1, 4, 16, 32)
        ]
        right.scatter(
            [k for k, _ in measured],
            [1 - n_stages * k * (T_F + T_B) / (n_stages * (st[0][-1] + T_B)) for k, st in measured],
            s=12,
        )
    right.set_xlabel("micro-batches m")
    right.set_ylabel("bubble fraction")
    right.set_title("(S - 1) / (m + S - 1); dots: simulated 1F1B", fontsize=10)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(IMG / "w3d1_pipeline_parallel_memory.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
