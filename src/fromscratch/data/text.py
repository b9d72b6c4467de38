"""A character-level text corpus: the help pages of Python's ``pydoc_data.topics``.

The text ships with every CPython, but it changes from one Python version to the next, so
the course ships a fixed snapshot (the first 200,000 characters, taken from CPython 3.11,
limited to printable ASCII; Python Software Foundation License) inside this package:
every learner, on any Python, trains on the same characters and can compare numbers with
the website. ``load_text(source="python")`` reads the installed Python's own copy instead.
"""

from __future__ import annotations

import gzip
from importlib import resources
from typing import Optional

import torch

SNAPSHOT = "pydoc_topics.txt.gz"


def load_text(max_chars: Optional[int] = None, source: str = "snapshot") -> str:
    """The help texts of Python's ``pydoc_data.topics`` (English prose about the language).

    ``source="snapshot"`` (default) reads the fixed copy shipped with the course;
    ``source="python"`` reads the running Python's own, which differs between versions.
    """
    if max_chars is not None and max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    if source == "snapshot":
        with resources.files(__package__).joinpath(SNAPSHOT).open("rb") as f:
            text = gzip.decompress(f.read()).decode("ascii")
        if max_chars is not None and max_chars > len(text):
            raise ValueError(
                f"the shipped snapshot has {len(text):,} characters, fewer than max_chars="
                f"{max_chars:,}; use source='python' for the whole text"
            )
    elif source == "python":
        text = _python_topics()
    else:
        raise ValueError(f"source must be 'snapshot' or 'python', got {source!r}")
    return text if max_chars is None else text[:max_chars]


def _python_topics() -> str:
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:  # pragma: no cover - some distributions strip it
        raise ImportError(
            "This Python installation lacks the 'pydoc_data' module (some Linux "
            "distributions move it into a separate package such as python3-doc). "
            "Use the default load_text(source='snapshot') instead."
        ) from exc
    text = "\n\n".join(topics[k] for k in sorted(topics))
    allowed = set(chr(c) for c in range(32, 127)) | {"\n"}
    return "".join(ch for ch in text if ch in allowed)


class CharVocab:
    """Maps characters to integer ids and back."""

    def __init__(self, chars):
        self.chars = sorted(set(chars))
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        return cls(text)

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(
                f"characters {unknown[:10]} are not in the vocabulary of {len(self)} "
                "characters; build the vocabulary from text that contains them"
            )
        return torch.tensor([self.index[ch] for ch in text], dtype=torch.long)

    def decode(self, ids) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        bad = [i for i in ids if not 0 <= i < len(self)]
        if bad:
            raise ValueError(f"ids {bad[:10]} are outside the vocabulary (0..{len(self) - 1})")
        return "".join(self.chars[i] for i in ids)


def char_windows(ids: torch.Tensor, block: int, stride: Optional[int] = None) -> tuple:
    """Cut a 1-D tensor of ids into (input, next-character target) windows of ``block``.

    Returns ``X, Y`` of shape ``(n, block)`` where ``Y[i, t] == ids[start + t + 1]``.
    """
    stride = block if stride is None else stride
    if stride < 1 or block < 1:
        raise ValueError(f"block and stride must be >= 1, got {block} and {stride}")
    if ids.dim() != 1:
        raise ValueError(f"ids must be 1-D, got shape {tuple(ids.shape)}")
    if len(ids) < block + 1:
        raise ValueError(f"text of {len(ids)} ids is too short for windows of {block} + 1")
    starts = torch.arange(0, len(ids) - block, stride)
    X = torch.stack([ids[s : s + block] for s in starts.tolist()])
    Y = torch.stack([ids[s + 1 : s + block + 1] for s in starts.tolist()])
    return X, Y
