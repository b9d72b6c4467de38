"""Run-time settings: reproducibility, device choice and the CPU/GPU size switch.

One switch selects the size of every chapter's configuration::

    FROMSCRATCH_SCALE=small   # default: trains in seconds on a laptop CPU
    FROMSCRATCH_SCALE=large   # bigger models and data for a GPU

``FROMSCRATCH_DEVICE`` forces a device (``cpu``, ``cuda``, ``mps``); otherwise the best
available one is chosen.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

SCALES = ("small", "large")


def scale() -> str:
    """The configuration size chosen by ``FROMSCRATCH_SCALE`` (``small`` by default)."""
    value = os.environ.get("FROMSCRATCH_SCALE", "small").strip().lower()
    if value not in SCALES:
        raise ValueError(
            f"FROMSCRATCH_SCALE={value!r} is not a known scale; use one of {SCALES} "
            "(small: CPU in seconds, large: a GPU)."
        )
    return value


def pick(small, large):
    """Return ``small`` or ``large`` according to :func:`scale`."""
    return large if scale() == "large" else small


def device() -> torch.device:
    """The device to train on: ``FROMSCRATCH_DEVICE`` if set, else CUDA, then MPS, then CPU."""
    forced = os.environ.get("FROMSCRATCH_DEVICE", "").strip().lower()
    if forced:
        if forced == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("FROMSCRATCH_DEVICE=cuda, but PyTorch sees no CUDA GPU.")
        if forced == "mps" and not _mps_available():
            raise RuntimeError("FROMSCRATCH_DEVICE=mps, but PyTorch sees no Apple MPS device.")
        if forced not in ("cpu", "cuda", "mps"):
            raise ValueError(f"FROMSCRATCH_DEVICE={forced!r}: use cpu, cuda or mps.")
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a ``torch.Generator`` seeded the same way."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def progress_enabled() -> bool:
    """Progress bars are on unless ``FROMSCRATCH_PROGRESS=0`` (set when notebooks are
    executed for the website and CI, whose stored outputs must not hold timing noise)."""
    return os.environ.get("FROMSCRATCH_PROGRESS", "1") != "0"
