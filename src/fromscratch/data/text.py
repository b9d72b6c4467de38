"""A character-level text corpus that ships with every CPython: ``pydoc_data.topics``."""

from __future__ import annotations

from typing import Optional

import torch


def load_text(max_chars: Optional[int] = None) -> str:
    """The help texts of Python's ``pydoc_data.topics`` (about 0.5 MB of English prose
    about the language), joined in a fixed order and limited to printable ASCII."""
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:  # pragma: no cover - some distributions strip it
        raise ImportError(
            "The text corpus is Python's own 'pydoc_data' module, which this Python "
            "installation lacks (some Linux distributions move it into a separate "
            "package such as python3-doc). Use a python.org, conda or Colab Python."
        ) from exc
    text = "\n\n".join(topics[k] for k in sorted(topics))
    allowed = set(chr(c) for c in range(32, 127)) | {"\n"}
    text = "".join(ch for ch in text if ch in allowed)
    if max_chars is not None:
        if max_chars < 1:
            raise ValueError(f"max_chars must be positive, got {max_chars}")
        text = text[:max_chars]
    return text


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
    stride = stride or block
    if ids.dim() != 1:
        raise ValueError(f"ids must be 1-D, got shape {tuple(ids.shape)}")
    if len(ids) < block + 1:
        raise ValueError(f"text of {len(ids)} ids is too short for windows of {block} + 1")
    starts = torch.arange(0, len(ids) - block, stride)
    X = torch.stack([ids[s : s + block] for s in starts.tolist()])
    Y = torch.stack([ids[s + 1 : s + block + 1] for s in starts.tolist()])
    return X, Y
