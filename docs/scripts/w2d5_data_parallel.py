"""Figures for docs/w2d5_data_parallel.md, drawn with the reference solutions.

Run from the repository root: `python docs/scripts/w2d5_data_parallel.py` (or `nox -s figures`).

The ring figure runs the solution's `ring_reduce_scatter` and `ring_all_gather` for 4 ranks, one
thread per rank, with a stand-in for `torch.distributed` that passes tensors through queues and
records every rank's chunks before each exchange: what is drawn is what the code does.
"""

from __future__ import annotations

import queue
import sys
import threading
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "solutions"))
from mlab import w2d5_data_parallel as m  # noqa: E402

IMG = ROOT / "docs" / "img"
COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]


class ThreadDist:
    """Just enough of torch.distributed for the ring functions, with one thread per rank.

    The solution's `_exchange` (send one tensor, receive another) is replaced by `exchange`,
    which passes tensors through queues and records the rank's chunks before each step.
    """

    def __init__(self, world_size: int):
        self.world_size = world_size
        self.local = threading.local()
        self.links = {(a, b): queue.Queue() for a in range(world_size) for b in range(world_size)}
        self.history: dict[int, list[list[int]]] = {r: [] for r in range(world_size)}

    def get_rank(self) -> int:
        return self.local.rank

    def get_world_size(self) -> int:
        return self.world_size

    def snapshot(self) -> None:
        self.history[self.local.rank].append([int(c.sum()) for c in self.local.chunks])

    def exchange(self, send, dst, recv, src) -> None:
        self.snapshot()  # the state before each step
        self.links[(self.local.rank, dst)].put(send.clone())
        recv.copy_(self.links[(src, self.local.rank)].get(timeout=10))


def ring_history(world_size: int = 4) -> dict[int, list[list[int]]]:
    """Each rank's chunks (as bit masks of the ranks summed into them) at every step."""
    fake = ThreadDist(world_size)
    errors: list[BaseException] = []
    real = m.dist, m._exchange
    m.dist, m._exchange = fake, fake.exchange
    try:

        def rank_main(rank: int) -> None:
            try:
                fake.local.rank = rank
                flat = torch.full((world_size,), float(2**rank))  # rank r contributes bit r
                fake.local.chunks = m.ring_chunks(flat, world_size)
                m.ring_reduce_scatter(fake.local.chunks)
                m.ring_all_gather(fake.local.chunks)
                fake.snapshot()
            except BaseException as exc:  # noqa: BLE001 (re-raised below)
                errors.append(exc)

        threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(world_size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        m.dist, m._exchange = real
    if errors:
        raise errors[0]
    return fake.history


def ring_figure() -> None:
    w = 4
    history = ring_history(w)
    steps = len(history[0])  # start, 3 reduce-scatter steps, 3 all-gather steps
    labels = (
        ["start"]
        + [f"reduce-scatter\nstep {s + 1}" for s in range(w - 1)]
        + [f"all-gather\nstep {s + 1}" for s in range(w - 1)]
    )
    fig, ax = plt.subplots(figsize=(8.6, 7.4))
    box, gap_x, gap_y = 0.42, 2.6, 1.0
    for step in range(steps):
        y = -step * gap_y
        ax.text(-0.35, y + box / 2, labels[step], ha="right", va="center", fontsize=8)
        for rank in range(w):
            x0 = rank * gap_x
            for c, mask in enumerate(history[rank][step]):
                x = x0 + c * (box + 0.06)
                present = [r for r in range(w) if mask >> r & 1]
                for i, r in enumerate(present):  # one stripe per rank summed into this chunk
                    h = box / len(present)
                    ax.add_patch(Rectangle((x, y + i * h), box, h, color=COLORS[r], lw=0))
                full = len(present) == w
                ax.add_patch(
                    Rectangle((x, y), box, box, fill=False, lw=2.2 if full else 0.6, ec="black")
                )
            if step < steps - 1:  # the chunk this rank sends in the next step
                phase_step = step if step < w - 1 else step - (w - 1)
                sent = (rank - phase_step) % w if step < w - 1 else (rank + 1 - phase_step) % w
                xs = x0 + sent * (box + 0.06) + box / 2
                dst = (rank + 1) % w
                xd = dst * gap_x + sent * (box + 0.06) + box / 2
                if dst == 0:  # wrap around: draw the arrow leaving to the right
                    xd = w * gap_x - 0.2
                ax.add_patch(
                    FancyArrowPatch(
                        (xs, y - 0.04),
                        (xd, y - gap_y + box + 0.04),
                        arrowstyle="-|>",
                        mutation_scale=8,
                        lw=0.8,
                        color=COLORS[rank],
                        alpha=0.8,
                    )
                )
    for rank in range(w):
        ax.text(
            rank * gap_x + 2 * (box + 0.06) - 0.03,
            0.62,
            f"rank {rank}",
            ha="center",
            fontsize=9,
            color=COLORS[rank],
            weight="bold",
        )
    ax.text(w * gap_x + 0.05, -0.45, "to\nrank 0", fontsize=7, ha="left", va="center")
    ax.set_xlim(-1.7, w * gap_x + 0.6)
    ax.set_ylim(-steps * gap_y + 0.3, 0.9)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(
        "Ring all-reduce, 4 ranks, tensor cut into 4 chunks: stripes = ranks summed into "
        "a chunk,\nthick border = complete sum, arrow = the chunk sent to the right "
        "neighbour in the next step",
        fontsize=8.5,
    )
    fig.savefig(IMG / "w2d5_data_parallel_ring.png", dpi=90, bbox_inches="tight")


def traffic_figure() -> None:
    """Elements the busiest rank sends + receives to all-reduce N elements, naive vs ring."""
    ws = torch.arange(2, 17)
    naive = 2 * (ws - 1)  # rank 0 receives W - 1 tensors and sends W - 1 back
    ring = 2 * 2 * (ws - 1) / ws  # every rank sends and receives 2 (W - 1) / W of the tensor
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.plot(ws, naive, "o-", label="naive (through rank 0): 2 (W - 1) N at rank 0")
    ax.plot(ws, ring, "s-", label="ring: 4 (W - 1) / W N at every rank")
    ax.axhline(4, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("world size W")
    ax.set_ylabel("elements moved / N\n(busiest rank, in + out)")
    ax.legend(fontsize=8)
    ax.set_title("The ring keeps every link equally busy, and the load stays below 4N", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMG / "w2d5_data_parallel_traffic.png", dpi=90)


if __name__ == "__main__":
    IMG.mkdir(parents=True, exist_ok=True)
    ring_figure()
    traffic_figure()
