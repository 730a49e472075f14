"""The days of the curriculum: names, titles and grading budgets.

The names are the public contract shared by the graders (`tests/test_<day>.py`), the exercise
modules (`mlab/<day>.py`), the docs pages (`docs/<day>.md`) and the roster (`cohort.toml`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Day:
    name: str
    title: str
    budget_s: int = 60  # graders on the reference solutions, 2 CPU cores
    optional: bool = False


DAYS: tuple[Day, ...] = (
    Day("w0_prep", "PyTorch array programming"),
    Day("w1d1_raytracing", "A renderer as array programming"),
    Day("w1d2_resnet", "ResNet from scratch, then real weights"),
    Day("w1d3_cnn_interp", "Interpretability on the ResNet"),
    Day("w1d4_optim", "Optimizers and hyperparameter search"),
    Day("w1d5_autograd", "A small PyTorch clone with backprop"),
    Day("w1d6_kernels", "GPU kernels in Numba CUDA and Triton", optional=True),
    Day("w2d1_bert", "BERT from scratch, with pretrained weights"),
    Day("w2d2_gpt2", "GPT-2, sampling and beam search"),
    Day("w2d3_finetune", "Fine-tuning", budget_s=120),
    Day("w2d4_gpt2_interp", "Interpretability on GPT-2"),
    Day("w2d5_data_parallel", "Data-parallel training", budget_s=120),
    Day("w3d1_pipeline_parallel", "Pipeline parallelism", budget_s=120),
    Day("w3d2_tensor_parallel", "Tensor parallelism", budget_s=120),
    Day("w3d3_dqn", "Deep Q-learning", budget_s=120),
    Day("w3d4_policy_gradient", "Policy gradients and PPO", budget_s=120),
    Day("w3d5_rl_lm", "RL on language models", budget_s=120),
    Day("w3d6_transformer_interp", "More interpretability"),
    Day("w3d7_elk", "Eliciting Latent Knowledge", optional=True),
)

BY_NAME = {day.name: day for day in DAYS}


def day_of_test_file(path: str | Path) -> str | None:
    """`tests/test_w0_prep.py` -> `w0_prep`; None for files that are not a day's graders."""
    stem = Path(path).stem
    return stem.removeprefix("test_") if stem.startswith("test_") else None


def available_days(tests_dir: Path) -> list[str]:
    """Days that have graders in `tests_dir`, in curriculum order."""
    present = {day_of_test_file(p) for p in tests_dir.glob("test_*.py")}
    return [day.name for day in DAYS if day.name in present]
