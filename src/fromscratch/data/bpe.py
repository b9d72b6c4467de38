"""A byte-level BPE (byte-pair encoding) tokenizer, trained from scratch merge by merge.

Language models read integer ids. Characters give a tiny vocabulary but long sequences;
whole words give short sequences but an endless vocabulary. BPE (Sennrich et al. 2016,
"Neural machine translation of rare words with subword units"; byte-level as in GPT-2,
Radford et al. 2019) sits in between and is *learned* from text:

1. start from the 256 possible bytes, so every string (through its UTF-8 bytes) can be
   written with the 256 first ids and nothing is ever "unknown";
2. count every pair of adjacent tokens in the training text;
3. merge the most frequent pair ``(a, b)`` into a new token ``256 + k`` whose bytes are
   ``bytes(a) + bytes(b)``, and replace every occurrence of ``a b`` by it;
4. repeat 2-3 until the vocabulary has ``vocab_size`` tokens.

The ordered list of merges *is* the tokenizer: ``encode`` replays them on new text (the
earliest-learned pair first), ``decode`` concatenates the bytes of the tokens.

**Pre-tokenization.** By default the text is first cut into chunks with GPT-2's regular
expression (:data:`GPT2_PATTERN`: a word with its leading space, a number, a run of
punctuation, a run of white space), and merges never cross a chunk boundary, so tokens
are words and pieces of words, not ``"e t"`` or ``". The"``. ``pattern=None`` turns it
off (the whole text is one sequence). On the course corpus (train on the first 90% of
``load_text()``, measure on the last 10%) the regex gives these bytes per token::

    vocab_size          512              1024
                   train  held-out   train  held-out
    GPT-2 regex    2.147   2.124     2.978   2.684
    no regex       2.155   2.188     3.045   2.771

Without the regex, tokens may span words (``"of the "``, ``".  The "``) and compress a
little better (3% on held-out text), but a token then mixes words and punctuation,
the same word gets different tokens depending on what precedes it, and neither training
nor encoding can work on each distinct word once (both take about ten times longer). The
regex is what GPT-2 and most later models do. Hugging Face's ``tokenizers`` (byte-level
BPE, the same regex) compresses this text to the same numbers.

Python's :mod:`re` has no ``\\p{L}`` (letter) class, so :data:`GPT2_PATTERN` spells it
``[^\\W\\d_]`` (word characters that are neither decimal digits nor ``_``). For printable
ASCII text (all of this corpus) it splits exactly like GPT-2's pattern; for other scripts it
differs in rare cases (a character such as ``"²"`` counts as a letter here, a number there).

**Unicode.** ``encode`` accepts any ``str`` that has a UTF-8 encoding, emoji, CJK and
combining characters included, and ``decode(encode(text)) == text`` always holds. Lone
surrogates (``"\\ud800"``, which Python strings can hold but UTF-8 cannot) are refused
with a ``ValueError``. ``decode`` accepts any sequence of valid ids, but an arbitrary
sequence (say the first id of a three-byte character alone, or what a model samples) need
not be valid UTF-8: invalid bytes become ``"\\ufffd"`` (``errors="replace"``), so decode
never fails on valid ids. Use :meth:`BPETokenizer.decode_bytes` for the exact bytes.

**Speed.** Recounting every pair after each merge costs a pass over the text per merge:
for 768 merges on 180,000 characters, about 10 s with the regex (a pass over the distinct
words, each weighted by how often it occurs) and a minute without. Training here keeps the
pair counts, and for each pair the places where it occurs, up to date as merges happen
(each merge only changes the counts of the pairs around the places it touches) and picks
the most frequent pair from a heap: 0.1-0.2 s with the regex, under 2 s without. Ties go
to the smallest pair of ids, so training is deterministic.
"""

from __future__ import annotations

import heapq
import json
import numbers
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, List, NamedTuple, Optional, Tuple, Union

# GPT-2's pre-tokenization pattern (``'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
# ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+``) written for Python's ``re``: letters are
# ``[^\W\d_]``, numbers ``\d``, and "neither space, letter nor number" is ``[^\s\w]|_``.
GPT2_PATTERN = (
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""
)

Pair = Tuple[int, int]


class MergeStep(NamedTuple):
    """One training step: the ``pair`` of ids merged into ``new_id`` (its ``token`` bytes),
    which occurred ``count`` times in the training text at that point."""

    rank: int
    pair: Pair
    new_id: int
    token: bytes
    count: int


class BPETokenizer:
    """Byte-level BPE: ids 0-255 are the bytes, id ``256 + k`` is the ``k``-th merge.

    Train with :meth:`train`; ``encode`` / ``decode`` convert between ``str`` and ids,
    ``len(tok)`` is the vocabulary size, ``tok.merges`` the ordered merges and
    ``tok.vocab[i]`` the bytes of token ``i``.
    """

    def __init__(self, merges: Iterable[Pair] = (), pattern: Optional[str] = GPT2_PATTERN,
                 counts: Optional[Iterable[int]] = None):
        self.merges: List[Pair] = []
        self.vocab: List[bytes] = [bytes([b]) for b in range(256)]
        for k, pair in enumerate(merges):
            try:
                a, b = (int(i) for i in pair)
            except (TypeError, ValueError):
                raise ValueError(f"merge {k} must be a pair of ids, got {pair!r}") from None
            if not (0 <= a < len(self.vocab) and 0 <= b < len(self.vocab)):
                raise ValueError(f"merge {k} = {pair!r} uses an id outside 0..{len(self.vocab) - 1} "
                                 "(a merge may only use bytes and earlier merges)")
            self.merges.append((a, b))
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self.ranks = {pair: k for k, pair in enumerate(self.merges)}
        self.counts = None if counts is None else [int(c) for c in counts]
        if self.counts is not None and len(self.counts) != len(self.merges):
            raise ValueError(f"got {len(self.counts)} counts for {len(self.merges)} merges")
        if pattern is not None and not isinstance(pattern, str):
            raise ValueError(f"pattern must be a regular expression string or None, got {pattern!r}")
        self.pattern = pattern
        self._regex = None if pattern is None else re.compile(pattern)
        self._cache: dict = {}

    # ----------------------------------------------------------------- training
    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: Optional[str] = GPT2_PATTERN,
              min_count: int = 2, verbose: bool = False) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text``, most frequent pair first.

        ``pattern`` is the pre-tokenization regex (``None``: none); a pair that occurs
        fewer than ``min_count`` times is never merged, so training stops early (with a
        smaller vocabulary) on a text too short for ``vocab_size``. ``verbose=True``
        prints each merge as it is learned; :meth:`trace` lists them afterwards.
        """
        _check_text(text)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, numbers.Integral) \
                or vocab_size < 256:
            raise ValueError(f"vocab_size must be an int >= 256 (the 256 byte tokens plus the "
                             f"merges), got {vocab_size!r}")
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        vocab_size = int(vocab_size)
        tok = cls(pattern=pattern)
        words = Counter(tok._chunks(text))
        merges, counts = _learn_merges(words, vocab_size - 256, min_count,
                                       tok.vocab if verbose else None)
        return cls(merges, pattern=pattern, counts=counts)

    def trace(self, k: Optional[int] = None) -> List[MergeStep]:
        """The first ``k`` merges (all if ``None``) with the bytes of the new token and how
        often the pair occurred when it was merged (-1 for a tokenizer built from bare
        merges; :meth:`train`, :meth:`save` and :meth:`load` keep the counts)."""
        steps = self.merges if k is None else self.merges[:k]
        return [MergeStep(r, pair, 256 + r, self.vocab[256 + r],
                          -1 if self.counts is None else self.counts[r])
                for r, pair in enumerate(steps)]

    # ----------------------------------------------------------------- encoding
    def encode(self, text: str) -> List[int]:
        """The ids of ``text``: its UTF-8 bytes, with the merges applied in learned order."""
        _check_text(text)
        ids: List[int] = []
        for chunk in self._chunks(text):
            cached = self._cache.get(chunk)
            if cached is None:
                cached = self._merge(list(chunk))
                if self._regex is not None and len(self._cache) < 100_000:
                    self._cache[chunk] = cached
            ids.extend(cached)
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes that the ids stand for (the exact inverse of ``encode``)."""
        ids = _as_id_list(ids)
        bad = [i for i in ids if not 0 <= i < len(self.vocab)]
        if bad:
            raise ValueError(f"ids {bad[:10]} are outside the vocabulary (0..{len(self.vocab) - 1})")
        return b"".join(self.vocab[i] for i in ids)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``; byte sequences that are not valid UTF-8 (possible for an
        arbitrary sequence of ids, never for the output of ``encode``) become ``"\\ufffd"``."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def pieces(self, text: str) -> List[str]:
        """``text`` cut into its tokens, each shown as text (for looking at a tokenization;
        a token holding part of a multi-byte character shows as ``"\\ufffd"``)."""
        return [self.vocab[i].decode("utf-8", errors="replace") for i in self.encode(text)]

    def bytes_per_token(self, text: str) -> float:
        """Compression: UTF-8 bytes of ``text`` per token (1.0 before any merge)."""
        n = len(self.encode(text))
        if n == 0:
            raise ValueError("bytes_per_token needs a non-empty text")
        return len(text.encode("utf-8")) / n

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        if self.pattern is None:
            kind = "no pre-tokenization"
        elif self.pattern == GPT2_PATTERN:
            kind = "GPT-2 pre-tokenization"
        else:
            kind = f"pattern {self.pattern!r}"
        return f"BPETokenizer({len(self)} tokens = 256 bytes + {len(self.merges)} merges, {kind})"

    def _chunks(self, text: str) -> List[bytes]:
        """Pre-tokenize: the UTF-8 bytes of each regex match (or of the whole text)."""
        if self._regex is None:
            parts = [text] if text else []
        else:
            parts = [m.group(0) for m in self._regex.finditer(text)]
            if sum(len(p) for p in parts) != len(text):
                raise ValueError(f"pattern {self.pattern!r} does not match every character "
                                 "of the text; a pre-tokenization pattern must cover it all")
        return [p.encode("utf-8") for p in parts]

    def _merge(self, ids: List[int]) -> List[int]:
        """Apply the merges to one chunk: always the earliest-learned pair present, the
        leftmost occurrence first, like training did (a heap of candidate pairs, so a long
        chunk, e.g. the whole text with ``pattern=None``, costs O(n log n))."""
        n = len(ids)
        if n < 2 or not self.ranks:
            return ids
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        sym = list(ids)
        ranks = self.ranks
        heap = [(ranks[p], i) for i, p in enumerate(zip(sym, sym[1:])) if p in ranks]
        heapq.heapify(heap)
        while heap:
            r, i = heapq.heappop(heap)
            j = nxt[i]
            # stale entry: position i was merged away or its pair has changed since
            if sym[i] < 0 or j >= n or ranks.get((sym[i], sym[j])) != r:
                continue
            sym[i], sym[j] = 256 + r, -1
            nxt[i] = nxt[j]
            if nxt[i] < n:
                prv[nxt[i]] = i
                r2 = ranks.get((sym[i], sym[nxt[i]]))
                if r2 is not None:
                    heapq.heappush(heap, (r2, i))
            if prv[i] >= 0:
                r2 = ranks.get((sym[prv[i]], sym[i]))
                if r2 is not None:
                    heapq.heappush(heap, (r2, prv[i]))
        return [s for s in sym if s >= 0]

    # ----------------------------------------------------------------- saving
    def to_dict(self) -> dict:
        return {"format": "fromscratch-bpe", "version": 1, "pattern": self.pattern,
                "merges": [list(p) for p in self.merges], "counts": self.counts}

    @classmethod
    def from_dict(cls, d: dict) -> BPETokenizer:
        if not isinstance(d, dict) or d.get("format") != "fromscratch-bpe":
            raise ValueError("not a saved BPETokenizer (missing format 'fromscratch-bpe')")
        if d.get("version") != 1:
            raise ValueError(f"unknown BPETokenizer file version {d.get('version')!r}")
        return cls(d["merges"], pattern=d.get("pattern"), counts=d.get("counts"))

    def save(self, path: Union[str, Path]) -> None:
        """Write the merges and the pattern to a small JSON file."""
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: Union[str, Path]) -> BPETokenizer:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _check_text(text) -> None:
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"text has no UTF-8 encoding: {exc.object[exc.start:exc.end]!r} at "
                         f"position {exc.start} is a lone surrogate; BPE works on UTF-8 bytes") from None


def _as_id_list(ids) -> List[int]:
    if isinstance(ids, (str, bytes)):
        raise ValueError(f"ids must be a sequence of ints, got {type(ids).__name__}")
    if hasattr(ids, "tolist"):  # torch tensor, numpy array
        ids = ids.tolist()
    ids = list(ids)
    bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, numbers.Integral)]
    if bad:
        raise ValueError(f"ids must be ints, got {bad[:5]!r}")
    return [int(i) for i in ids]


def _learn_merges(words: Counter, n_merges: int, min_count: int,
                  vocab: Optional[List[bytes]]) -> Tuple[List[Pair], List[int]]:
    """The merge loop with incremental pair counts.

    All distinct chunks sit end to end in one array of symbols, linked to their neighbours
    (``nxt``/``prv``, -1 at a chunk's ends), each position weighted by how often its chunk
    occurs. ``count[pair]`` is the weighted number of occurrences and ``where[pair]`` the
    positions where the pair starts. Merging ``(a, b)`` visits only ``where[(a, b)]``:
    at each place ``x a b y`` becomes ``x ab y``, so the counts of ``(x, a)``, ``(a, b)``
    and ``(b, y)`` go down and those of ``(x, ab)`` and ``(ab, y)`` go up. A heap of
    ``(-count, pair)`` gives the most frequent pair; an entry whose count is out of date is
    skipped when it comes up. ``vocab`` (bytes per id), when given, is used to print.
    """
    sym, nxt, prv, weight = [], [], [], []
    for word, w in words.items():
        start = len(sym)
        for k, byte in enumerate(word):
            sym.append(byte)
            weight.append(w)
            prv.append(start + k - 1 if k > 0 else -1)
            nxt.append(start + k + 1 if k < len(word) - 1 else -1)
    count: dict = {}
    where: dict = {}
    for i, j in enumerate(nxt):
        if j >= 0:
            pair = (sym[i], sym[j])
            count[pair] = count.get(pair, 0) + weight[i]
            where.setdefault(pair, set()).add(i)
    heap = [(-c, pair) for pair, c in count.items()]
    heapq.heapify(heap)
    names = None if vocab is None else list(vocab)

    def add(pair, i, w):
        c = count.get(pair, 0) + w
        count[pair] = c
        if w > 0:
            where.setdefault(pair, set()).add(i)
        elif pair in where:  # (the pair being merged has been popped already)
            where[pair].discard(i)
        heapq.heappush(heap, (-c, pair))

    merges, counts = [], []
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        if count.get(pair, 0) != -neg:
            continue  # stale heap entry
        if -neg < min_count:
            break
        a, b = pair
        new = 256 + len(merges)
        merges.append(pair)
        counts.append(-neg)
        if names is not None:
            names.append(names[a] + names[b])
            print(f"merge {len(merges) - 1:4d}: {a:4d} + {b:4d} -> {new:4d} "
                  f"{names[new]!r:24} count {-neg}")
        for i in sorted(where.pop(pair)):  # left to right, as encode does
            j = nxt[i]
            if sym[i] != a or j < 0 or sym[j] != b:
                continue  # an overlapping occurrence ("a a a") already merged away
            w = weight[i]
            x, y = prv[i], nxt[j]
            if x >= 0:
                add((sym[x], a), x, -w)
            if y >= 0:
                add((b, sym[y]), j, -w)
            sym[i], sym[j] = new, -1
            nxt[i], nxt[j], prv[j] = y, -1, -1
            if y >= 0:
                prv[y] = i
                add((new, sym[y]), i, w)
            if x >= 0:
                add((sym[x], new), x, w)
        del count[pair]
    return merges, counts
