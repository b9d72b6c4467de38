"""Offline data for every chapter: nothing here downloads anything.

- :mod:`.digits`: scikit-learn's 8x8 handwritten digits (ships inside scikit-learn);
- :mod:`.text`: the prose of ``pydoc_data.topics`` (ships inside CPython) as characters;
- :mod:`.bpe`: a byte-level BPE tokenizer trained from scratch, to cut text into subwords;
- :mod:`.sequences`: generators for synthetic sequence tasks.
"""

from .bpe import GPT2_PATTERN, BPETokenizer, MergeStep
from .digits import (
    DigitsSplit,
    load_digits_split,
    random_shift,
    shift_images,
    split_off_validation,
)
from .sequences import (
    count_task,
    remember_first,
    repeated_tokens,
    reverse_task,
    sort_task,
    two_relations,
)
from .text import CharVocab, char_windows, load_text

__all__ = [
    "BPETokenizer",
    "GPT2_PATTERN",
    "MergeStep",
    "DigitsSplit",
    "load_digits_split",
    "random_shift",
    "shift_images",
    "split_off_validation",
    "remember_first",
    "reverse_task",
    "count_task",
    "two_relations",
    "repeated_tokens",
    "sort_task",
    "CharVocab",
    "char_windows",
    "load_text",
]
