"""Day w1d3_cnn_interp: what does a trained CNN look at?

A small CNN trained on Fashion-MNIST (given: `SmallCNN`, `load_cnn`, `load_examples`) and the
classic ways to ask it why it said what it said:

- hooks: read (`record_activations`) and differentiate (`record_gradients`) any layer's output;
- attribution maps: `saliency_map` (Simonyan et al. 2013), `integrated_gradients` (Sundararajan
  et al. 2017), `occlusion_map` (Zeiler & Fergus 2014), `grad_cam` (Selvaraju et al. 2017);
- `feature_visualization`: the input a unit likes best, by gradient ascent with jitter
  (Olah et al. 2017, "Feature Visualization").

A class *score* is always a logit (before the softmax), one per example: `logits[i, target[i]]`.
The examples of a batch do not interact in `SmallCNN` (no batch norm), so the gradient of the sum
of the scores over the batch gives every example its own gradient at once.
Read docs/w1d3_cnn_interp.md for the maths.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# Where the pair repository keeps the trained weights and the example images.
DATA_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "w1d3_cnn_interp"

# -- the model (given) -------------------------------------------------------------------------


class Normalize(nn.Module):
    """Map pixels in [0, 1] to roughly zero mean and unit variance (Fashion-MNIST statistics).

    Inside the model, so that the input x = 0 is a black image: the natural IG baseline.
    """

    def __init__(self, mean: float = 0.2860, std: float = 0.3530):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class SmallCNN(nn.Sequential):
    """Three 3x3 convolutions and a linear classifier, ~30k parameters, ~90% test accuracy.

    Children run in order, so every layer name below can be hooked:
        x (b, 1, 28, 28) -> normalize -> conv1 -> relu1 -> pool1 (b, 16, 14, 14)
          -> conv2 -> relu2 -> pool2 (b, 32, 7, 7) -> conv3 -> relu3 (b, 32, 7, 7)
          -> flatten (b, 1568) -> fc (b, 10) logits
    The ReLUs are not in place (an in-place op would overwrite the output a hook saw).
    """

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 32), num_classes: int = 10):
        c1, c2, c3 = channels
        super().__init__(
            OrderedDict(
                normalize=Normalize(),
                conv1=nn.Conv2d(1, c1, 3, padding=1),
                relu1=nn.ReLU(),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(c1, c2, 3, padding=1),
                relu2=nn.ReLU(),
                pool2=nn.MaxPool2d(2),
                conv3=nn.Conv2d(c2, c3, 3, padding=1),
                relu3=nn.ReLU(),
                flatten=nn.Flatten(),
                fc=nn.Linear(c3 * 7 * 7, num_classes),
            )
        )


def load_cnn(directory: Path | str = DATA_DIR) -> SmallCNN:
    """The trained SmallCNN from `directory/cnn.pt`, in eval mode."""
    model = SmallCNN()
    model.load_state_dict(torch.load(Path(directory) / "cnn.pt", weights_only=True))
    return model.eval()


def load_examples(
    directory: Path | str = DATA_DIR,
) -> tuple[Float[Tensor, "n 1 28 28"], Int[Tensor, " n"]]:
    """The 16 Fashion-MNIST test images shipped with the weights: pixels in [0, 1] and labels."""
    with np.load(Path(directory) / "examples.npz") as data:
        images = torch.from_numpy(data["images"]).float() / 255  # (n, 28, 28) uint8
        labels = torch.from_numpy(data["labels"]).long()
    return images[:, None], labels


def class_scores(logits: Float[Tensor, "b k"], target: Int[Tensor, " b"]) -> Float[Tensor, " b"]:
    """The logit of each example's target class: logits[i, target[i]]."""
    return logits.gather(1, target[:, None])[:, 0]


# -- hooks -------------------------------------------------------------------------------------


def record_activations(
    model: nn.Module, x: Float[Tensor, "b ..."], layers: Sequence[str]
) -> dict[str, Tensor]:
    """Run `model(x)` once and return the output of each named layer, detached.

    Names are those of `model.named_modules()` (e.g. "relu3"); `model.get_submodule(name)`
    finds the module. Register a forward hook on each, and remove every hook before returning,
    even when the forward pass raises (try / finally), so the model is left as it was.
    """
    raise NotImplementedError("record_activations: see docs/w1d3_cnn_interp.md#record_activations")


def record_gradients(
    model: nn.Module, x: Float[Tensor, "b ..."], target: Int[Tensor, " b"], layers: Sequence[str]
) -> dict[str, Tensor]:
    """Gradient of the summed target scores, sum_i logits[i, target[i]], w.r.t. each layer's output.

    Use backward hooks (`register_full_backward_hook`: the hook gets `grad_output`, the gradient
    w.r.t. the module's output) or a forward hook that calls `output.register_hook`. Remove every
    hook before returning. Leave the parameters' `.grad` alone: differentiate with
    `torch.autograd.grad` w.r.t. a copy of x that requires grad, rather than `.backward()`.
    Returned tensors are detached and shaped like the layers' outputs.
    """
    raise NotImplementedError("record_gradients: see docs/w1d3_cnn_interp.md#record_gradients")


# -- attribution maps --------------------------------------------------------------------------


def saliency_map(
    model: nn.Module, x: Float[Tensor, "b c h w"], target: Int[Tensor, " b"]
) -> Float[Tensor, "b c h w"]:
    """The vanilla gradient: d logits[i, target[i]] / d x[i], for every example at once.

    Plots usually show its absolute value (max over channels); return the signed gradient.
    """
    raise NotImplementedError("saliency_map: see docs/w1d3_cnn_interp.md#saliency_map")


def integrated_gradients(
    model: nn.Module,
    x: Float[Tensor, "b c h w"],
    target: Int[Tensor, " b"],
    baseline: Float[Tensor, "b c h w"] | None = None,
    steps: int = 50,
) -> Float[Tensor, "b c h w"]:
    """Integrated gradients with the right Riemann sum of the paper (eq. 3), m = `steps`:

        IG(x) = (x - x') * (1/m) * sum_{k=1..m} grad F(x' + (k/m) (x - x'))

    with F the target score and x' the baseline (zeros, a black image, when None). Completeness:
    IG(x).sum() ~ F(x) - F(x') as m grows. Evaluate all m points of all examples in one batch
    of m * b images.
    """
    raise NotImplementedError("integrated_gradients: see docs/w1d3_cnn_interp.md#integrated_gradients")


def occlusion_map(
    model: nn.Module,
    x: Float[Tensor, "b c h w"],
    target: Int[Tensor, " b"],
    patch: int = 4,
    stride: int = 2,
    fill: float = 0.0,
) -> Float[Tensor, "b nh nw"]:
    """How much the target score drops when a `patch` x `patch` square is set to `fill`.

    Position (i, j) covers rows i*stride .. i*stride + patch - 1 and the same columns from
    j*stride, on every channel; nh = (h - patch) // stride + 1, likewise nw. The map holds
    F(x) - F(x occluded at (i, j)). Batch the nh * nw occluded copies of each image.
    """
    raise NotImplementedError("occlusion_map: see docs/w1d3_cnn_interp.md#occlusion_map")


def grad_cam(
    model: nn.Module, x: Float[Tensor, "b c h w"], target: Int[Tensor, " b"], layer: str = "relu3"
) -> Float[Tensor, "b h2 w2"]:
    """Grad-CAM at the resolution of `layer`'s output A (b, K, h2, w2):

        alpha[i, k] = mean over (u, v) of d score_i / d A[i, k, u, v]   (one weight per channel)
        cam[i] = ReLU(sum_k alpha[i, k] * A[i, k])

    Get A and its gradient from hooks (one forward and one backward pass is enough). Upsample
    with `F.interpolate` to overlay it on the image.
    """
    raise NotImplementedError("grad_cam: see docs/w1d3_cnn_interp.md#grad_cam")


# -- feature visualization ---------------------------------------------------------------------


def feature_visualization(
    model: nn.Module,
    layer: str,
    channel: int,
    steps: int = 128,
    lr: float = 0.1,
    jitter: int = 2,
    l2: float = 1e-3,
    seed: int = 0,
) -> Float[Tensor, "1 1 28 28"]:
    """The 28x28 image that most excites one unit, by gradient ascent on the pixels.

    The unit's activation is the mean of `layer`'s output over space for a conv channel,
    `out[0, channel, :, :].mean()`, or `out[0, channel]` for a vector output (e.g. "fc": a logit).
    Prefer a convolution to its ReLU: a ReLU unit that is off everywhere has zero gradient.
    Start from x = 0.5 + 0.1 * noise (noise from `torch.randn` with a Generator seeded by `seed`).
    At each of the `steps` steps: roll x by random (dy, dx) in [-jitter, jitter] (same generator),
    maximize activation(rolled x) - l2 * ((x - 0.5) ** 2).sum() with Adam (lr) on x alone, then
    clamp x to [0, 1]. Leave the model's parameters unchanged and remove your hooks.
    """
    raise NotImplementedError("feature_visualization: see docs/w1d3_cnn_interp.md#feature_visualization")
