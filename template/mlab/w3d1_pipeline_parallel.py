"""Day w3d1_pipeline_parallel: pipeline parallelism, GPipe and 1F1B.

A model too large for one device is cut into S consecutive *stages*, one per process ("rank");
stage s runs its layers and passes the activations to stage s + 1, and in backward the
gradients of those activations flow back from s + 1 to s. One batch through S stages keeps only
one stage busy at a time, so the batch is cut into m *micro-batches* that follow each other
down the pipe: GPipe (Huang et al., 2019) runs all m forwards, then all m backwards; 1F1B
(PipeDream-Flush, Narayanan et al., 2021; Megatron-LM's default schedule) interleaves one
forward with one backward once the pipe is full, so a stage holds at most S - s micro-batches'
activations instead of m. Both accumulate the gradient of the whole batch, so one pipelined
step equals one step of the whole model on one device. Read docs/w3d1_pipeline_parallel.md first.

Every function here runs on every rank at the same time (SPMD), with rank = stage index; the
graders run 2 to 4 ranks with the gloo backend on CPU, in float64.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

Op = tuple[str, int]  # ("F", i): forward of micro-batch i; ("B", i): its backward


# -- the model (given) -------------------------------------------------------------------------


class Block(nn.Module):
    """A residual MLP block, x + W2 tanh(W1 x): width d_model in and out."""

    def __init__(self, d_model: int, d_hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_model)

    def forward(self, x: Float[Tensor, "b d"]) -> Float[Tensor, "b d"]:
        return x + self.fc2(torch.tanh(self.fc1(x)))


def make_model(
    d_in: int = 5,
    d_model: int = 8,
    d_out: int = 3,
    n_blocks: int = 4,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> nn.Sequential:
    """Linear(d_in, d_model), n_blocks Blocks, Linear(d_model, d_out), initialized from `seed`.

    Every cut between two layers carries an activation of width d_model, so every stage boundary
    has the shape (micro-batch size, d_model).
    """
    torch.manual_seed(seed)
    layers = [nn.Linear(d_in, d_model)]
    layers += [Block(d_model, 2 * d_model) for _ in range(n_blocks)]
    layers += [nn.Linear(d_model, d_out)]
    return nn.Sequential(*layers).to(dtype)


def loss_fn(logits: Float[Tensor, "b c"], targets: Int[Tensor, " b"]) -> Float[Tensor, ""]:
    """The mean cross-entropy over the examples given."""
    return F.cross_entropy(logits, targets)


# -- splitting ---------------------------------------------------------------------------------


def split_stages(model: nn.Sequential, n_stages: int) -> list[nn.Sequential]:
    """Cut `model` into `n_stages` consecutive stages; stage s is an nn.Sequential of its layers.

    Each layer lands in exactly one stage, in order; the stages' layer counts differ by at most
    one, earlier stages taking the extra layers. The stages hold the model's own layer objects
    (no copies), so gradients land in the model's parameters. Raise ValueError unless
    1 <= n_stages <= len(model): a stage without layers has nothing to run.
    """
    raise NotImplementedError("split_stages: see docs/w3d1_pipeline_parallel.md#split_stages")


def split_micro_batches(batch: Tensor, n_micro: int) -> list[Tensor]:
    """Cut `batch` along dim 0 into `n_micro` consecutive micro-batches (views).

    Sizes differ by at most one, earlier micro-batches taking the extra examples (10 into 4:
    3, 3, 2, 2), so any batch size works. Raise ValueError unless 1 <= n_micro <= len(batch):
    an empty micro-batch would have no loss to average.
    """
    raise NotImplementedError("split_micro_batches: see docs/w3d1_pipeline_parallel.md#split_micro_batches")


# -- communication between neighbouring stages -------------------------------------------------


def send_forward(activation: Float[Tensor, "b d"]) -> dist.Work:
    """Start sending this stage's output to the next stage (rank + 1); return the request.

    Use `dist.isend`, which returns at once: a blocking `dist.send` waits until the peer posts
    the matching recv, and in 1F1B the two neighbours would each wait for the other. Send the
    values only (`detach()`, contiguous): autograd does not cross processes.
    """
    raise NotImplementedError("send_forward: see docs/w3d1_pipeline_parallel.md#send_forward")


def recv_forward(shape: tuple[int, ...], dtype: torch.dtype = torch.float64) -> Tensor:
    """Receive the previous stage's output (from rank - 1): a fresh leaf that requires grad.

    Allocate a buffer of the given shape, `dist.recv` into it, then mark it `requires_grad_()`:
    backward through this stage then leaves the gradient of the loss with respect to the
    received activation in its `.grad`, which is what the previous stage needs.
    """
    raise NotImplementedError("recv_forward: see docs/w3d1_pipeline_parallel.md#recv_forward")


def send_backward(grad: Float[Tensor, "b d"]) -> dist.Work:
    """Start sending the gradient of this stage's input to the previous stage (rank - 1)."""
    raise NotImplementedError("send_backward: see docs/w3d1_pipeline_parallel.md#send_backward")


def recv_backward(shape: tuple[int, ...], dtype: torch.dtype = torch.float64) -> Tensor:
    """Receive the gradient of this stage's output from the next stage (rank + 1)."""
    raise NotImplementedError("recv_backward: see docs/w3d1_pipeline_parallel.md#recv_backward")


# -- one stage ---------------------------------------------------------------------------------


class PipelineStage:
    """One stage of the pipeline: its layers, and the activations of micro-batches in flight.

    `inputs[i]` and `outputs[i]` hold micro-batch i's input and output (on the last stage the
    output is its scaled loss) from its forward until its backward, which frees them: their
    number is the memory a schedule costs. Sends in progress wait in `sends` until
    `wait_sends()` at the end of the step.
    """

    def __init__(
        self,
        module: nn.Module,
        stage: int,
        n_stages: int,
        d_model: int,
        loss_fn=loss_fn,
        dtype: torch.dtype = torch.float64,
    ):
        self.module, self.stage, self.n_stages = module, stage, n_stages
        self.d_model, self.loss_fn, self.dtype = d_model, loss_fn, dtype
        self.inputs: dict[int, Tensor] = {}
        self.outputs: dict[int, Tensor] = {}
        self.sends: list[dist.Work] = []

    @property
    def is_first(self) -> bool:
        return self.stage == 0

    @property
    def is_last(self) -> bool:
        return self.stage == self.n_stages - 1

    def wait_sends(self) -> None:
        """Wait until every send started by this stage has been received."""
        for work in self.sends:
            if work is not None:
                work.wait()
        self.sends.clear()

    def forward_step(
        self, i: int, inputs: Float[Tensor, "b d_in"], targets: Int[Tensor, " b"], scale: float
    ) -> Tensor | None:
        """Forward of micro-batch i through this stage; returns the scaled loss on the last stage.

        Every rank gets micro-batch i of the batch: stage 0 runs its layers on `inputs`, the
        other stages `recv_forward` an activation of shape (len(inputs), d_model) instead. Keep
        the input and the output in `self.inputs[i]` / `self.outputs[i]` for the backward. The
        last stage computes `loss_fn(output, targets) * scale` (scale = micro-batch size / batch
        size, so the micro-batch losses add up to the batch mean), stores that as its output and
        returns it; the others start `send_forward(output)` (keep the request in `self.sends`)
        and return None.
        """
        raise NotImplementedError("PipelineStage.forward_step: see docs/w3d1_pipeline_parallel.md#pipelinestage")

    def backward_step(self, i: int) -> None:
        """Backward of micro-batch i through this stage; frees its stored activations.

        The last stage backpropagates from its stored loss; the others `recv_backward` the
        gradient of their output and call `output.backward(grad)`. Gradients accumulate in the
        parameters' `.grad` over the micro-batches (never zero them here). Then every stage but
        the first starts `send_backward(input.grad)`. Pop micro-batch i from `inputs` and
        `outputs`.
        """
        raise NotImplementedError("PipelineStage.backward_step: see docs/w3d1_pipeline_parallel.md#pipelinestage")


# -- schedules ---------------------------------------------------------------------------------


def gpipe_schedule(n_stages: int, n_micro: int, stage: int) -> list[Op]:
    """GPipe: stage `stage` runs the forwards of micro-batches 0 .. m-1, then their backwards.

    [("F", 0), ..., ("F", m-1), ("B", 0), ..., ("B", m-1)], the same on every stage: simple,
    but each stage holds all m micro-batches' activations at the peak.
    """
    raise NotImplementedError("gpipe_schedule: see docs/w3d1_pipeline_parallel.md#gpipe_schedule")


def one_f_one_b_schedule(n_stages: int, n_micro: int, stage: int) -> list[Op]:
    """1F1B: warm up with w = min(S - s - 1, m) forwards, then alternate, then drain.

    Stage s runs forwards 0 .. w-1; then, for k = 0 .. m-w-1, the forward of w + k and the
    backward of k; then the backwards of m-w .. m-1. Forwards and backwards each go in
    micro-batch order; a stage holds at most min(S - s, m) micro-batches at once.
    """
    raise NotImplementedError("one_f_one_b_schedule: see docs/w3d1_pipeline_parallel.md#one_f_one_b_schedule")


SCHEDULES = {"gpipe": gpipe_schedule, "1f1b": one_f_one_b_schedule}


def pipeline_step(
    stage: PipelineStage,
    inputs: Float[Tensor, "n d_in"],
    targets: Int[Tensor, " n"],
    n_micro: int,
    schedule: str = "gpipe",
) -> float | None:
    """One pipelined forward and backward of the batch; returns its mean loss on the last stage.

    Every rank calls this with the same batch. Cut inputs and targets into `n_micro`
    micro-batches, get this stage's list of ops from `SCHEDULES[schedule]`, and run them in
    order with `stage.forward_step` (scale = micro-batch size / batch size) and
    `stage.backward_step`. Wait for the sends before returning. Afterwards each stage's
    parameters hold the gradient of the whole batch's mean loss (added to what `.grad` held).
    The last stage returns the sum of its scaled micro-batch losses as a float; the others None.
    """
    raise NotImplementedError("pipeline_step: see docs/w3d1_pipeline_parallel.md#pipeline_step")


# -- the bubble --------------------------------------------------------------------------------


def bubble_fraction(n_stages: int, n_micro: int) -> float:
    """The fraction of stage-time a GPipe or 1F1B step leaves idle: (S - 1) / (m + S - 1).

    With forwards taking t_f and backwards t_b on every stage, the step lasts
    (m + S - 1)(t_f + t_b) while each stage computes for m (t_f + t_b).
    """
    raise NotImplementedError("bubble_fraction: see docs/w3d1_pipeline_parallel.md#bubble_fraction")


def simulate_schedule(
    schedules: list[list[Op]], t_forward: float = 1.0, t_backward: float = 2.0
) -> list[list[float]]:
    """When each op of each stage starts if every op starts as soon as it can.

    `schedules[s]` is stage s's list of ops, run in that order. ("F", i) on stage s needs
    ("F", i) done on stage s - 1 (its input); ("B", i) needs ("B", i) done on stage s + 1 (its
    output's gradient) and ("F", i) done on stage s. Communication is instantaneous. An op
    starts at the latest of the end of the previous op of its stage and the ends of the ops it
    needs; forwards last `t_forward`, backwards `t_backward`. Returns the start times, shaped
    like `schedules`. Raise ValueError (a deadlock) when no stage's next op can ever run.
    """
    raise NotImplementedError("simulate_schedule: see docs/w3d1_pipeline_parallel.md#simulate_schedule")
