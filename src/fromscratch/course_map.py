"""The map of the course: every model type, what it takes and gives, what it is built from.

This list is the one place the course's structure is written down. The overview page's
figure and tables (``tools/build_overview.py``) are generated from it, and the measured
numbers in its comparison table come from each chapter's executed notebook
(:func:`fromscratch.report.read_metrics`), never typed by hand.

A model type whose chapter notebook does not exist yet shows as "coming"; ``chapter`` names
the notebook (``chapters/02_rnn``) once the chapter is in the table of contents.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

PARTS = (
    "Part I: building blocks",
    "Part II: attention and language",
    "Part III: generative models",
    "Part IV: multimodal and acting",
)

#: Keys every chapter passes to ``fromscratch.report.record`` (plus its ``quality`` key).
REQUIRED_METRICS = ("model", "parameters", "train_seconds", "compute_growth")


@dataclass(frozen=True)
class ModelType:
    """One model type of the course, and the chapter that builds it."""

    key: str  # short name, also the ``chapter`` argument of ``report.record``
    number: int  # chapter number in the suggested order
    title: str
    part: int  # index into PARTS
    inputs: str
    outputs: str
    built_from: Tuple[str, ...]  # the components the chapter writes from scratch
    reuses: Tuple[str, ...] = ()  # earlier model types whose code it is built on
    chapter: str | None = None  # "chapters/01_cnn" once written, else None
    quality: Tuple[str, str] = ("test_accuracy", "test accuracy")  # metric key, label
    #: earlier model types used only to measure this one (a baseline, or the digits
    #: classifier that scores generated digits); it is not built from them
    measured_with: Tuple[str, ...] = ()

    def notebook(self, root: Path) -> Path | None:
        """The executed notebook of this chapter under ``root`` (``None`` if not planned yet)."""
        return None if self.chapter is None else Path(root) / f"{self.chapter}.ipynb"

    def is_written(self, root: Path) -> bool:
        """Whether the chapter's executed notebook exists under ``root``."""
        nb = self.notebook(root)
        return nb is not None and nb.exists()


MODEL_TYPES: Tuple[ModelType, ...] = (
    ModelType(
        "cnn", 1, "CNN", 0, "image", "class scores",
        ("convolution (loops, im2col)", "padding, stride", "max pooling", "linear head"),
        chapter="chapters/01_cnn",
    ),
    ModelType(
        "rnn", 2, "RNN, LSTM, GRU", 0, "sequence of tokens", "label or next token",
        ("embedding", "RNN cell", "LSTM gates", "GRU gates"),
        chapter="chapters/02_rnn", quality=("memory_accuracy_lstm", "on the memory task (LSTM)"),
    ),
    ModelType(
        "transformer", 3, "Transformer", 1, "sequence of vectors", "sequence of vectors",
        ("scaled dot-product attention", "multi-head attention", "positional encoding",
         "residual + norm"),
        measured_with=("rnn",), chapter="chapters/03_transformer",
        quality=("order_task_accuracy", "reverse task, token accuracy"),
    ),
    ModelType(
        "llm", 4, "LLM", 1, "text prompt", "next-token probabilities",
        ("causal mask", "GPT decoder", "sampling", "KV cache"),
        reuses=("transformer",), chapter="chapters/04_llm",
        quality=("val_loss", "validation loss (nats/char)"),
    ),
    ModelType(
        "slm", 5, "SLM", 1, "text prompt", "next-token probabilities",
        ("int8/int4 quantization", "distillation"),
        reuses=("llm",), quality=("val_loss", "validation loss"),
    ),
    ModelType(
        "moe", 6, "Mixture of Experts", 1, "token sequence", "next-token probabilities",
        ("router", "top-k dispatch", "expert FFNs", "load-balancing loss"),
        reuses=("transformer",), quality=("val_loss", "validation loss"),
    ),
    ModelType(
        "ssm", 7, "State Space Model", 1, "long sequence", "sequence of outputs",
        ("discretization", "recurrent = convolutional form", "selective scan"),
        reuses=("transformer",),
    ),
    ModelType(
        "vae", 8, "Autoencoder / VAE", 2, "image", "latent code, reconstruction",
        ("encoder, decoder", "reparameterization", "ELBO"),
        measured_with=("cnn",), chapter="chapters/08_autoencoder",
        quality=("fd", "Frechet distance (prior samples)"),
    ),
    ModelType(
        "gan", 9, "GAN", 2, "random noise", "image",
        ("generator", "discriminator", "min-max training"),
        measured_with=("cnn",), chapter="chapters/09_gan",
        quality=("fd", "Frechet distance (samples)"),
    ),
    ModelType(
        "diffusion", 10, "Diffusion", 2, "noise (+ class)", "image",
        ("forward noising", "noise prediction", "DDIM sampling", "classifier-free guidance"),
        reuses=("vae",), measured_with=("cnn",), chapter="chapters/10_diffusion",
        quality=("fd", "Frechet distance (DDIM, 25 steps)"),
    ),
    ModelType(
        "vlm", 11, "VLM", 3, "image + text", "text, or image-text match",
        ("contrastive pre-training", "zero-shot prompts", "fusion by projection"),
        reuses=("cnn", "transformer", "llm"),
    ),
    ModelType(
        "vla", 12, "VLA", 3, "image + instruction", "action",
        ("simulated scene", "scripted demonstrations", "end-to-end policy"),
        reuses=("vlm",), quality=("success_rate", "success rate"),
    ),
    ModelType(
        "world_model", 13, "World Model", 3, "state + action", "next state, reward",
        ("latent dynamics", "imagined rollouts", "planning"),
        reuses=("vae", "rnn"), quality=("return", "mean return"),
    ),
    ModelType(
        "lam", 14, "Large Action Model", 3, "goal on a computer", "tool calls",
        ("intent", "task decomposition", "plan + memory", "tool execution"),
        reuses=("llm",), quality=("tasks_completed", "tasks completed"),
    ),
)

BY_KEY = {m.key: m for m in MODEL_TYPES}


def validate(model_types=MODEL_TYPES) -> None:
    """Raise ``ValueError`` if the map is inconsistent (unknown or later reuses, duplicates)."""
    seen = {}
    for m in model_types:
        if m.key in seen:
            raise ValueError(f"model type {m.key!r} is listed twice")
        if not 0 <= m.part < len(PARTS):
            raise ValueError(f"{m.key}: part {m.part} is not one of the {len(PARTS)} parts")
        for r in (*m.reuses, *m.measured_with):
            if r not in seen:
                raise ValueError(f"{m.key} reuses {r!r}, which is not an earlier model type")
        seen[m.key] = m


def reused_by(key: str, model_types=MODEL_TYPES) -> Tuple[str, ...]:
    """Keys of the model types that reuse ``key``."""
    return tuple(m.key for m in model_types if key in m.reuses)


validate()
