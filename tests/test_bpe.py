import random
import re
import time
from collections import Counter

import numpy as np
import pytest
import torch

from fromscratch.data import GPT2_PATTERN, BPETokenizer, MergeStep, load_text

UNICODE_SAMPLES = [
    "",
    "naïve café, Zürich; ½ price ²",
    "e\u0301 a\u0300\u0323 combining marks",
    "日本語のテキスト、中文文本。한국어 텍스트",
    "emoji 😀👍🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵",
    "tabs\tand\r\nnewlines\n\n  \u00a0nbsp \u2028 line sep \x00 nul \x1f",
    "Ωμέγα Кириллица עִבְרִית العربية हिन्दी",
    "'s 're 've it's don't __dunder__ 12345 3.14",
]


@pytest.fixture(scope="module")
def corpus():
    text = load_text()
    cut = int(0.9 * len(text))
    return text, text[:cut], text[cut:]


@pytest.fixture(scope="module")
def tok512(corpus):
    return BPETokenizer.train(corpus[1], 512)


def naive_merges(text, vocab_size, pattern=GPT2_PATTERN, min_count=2):
    """The textbook loop: recount every pair over every word after each merge."""
    chunks = [m.group(0) for m in re.finditer(pattern, text)] if pattern else [text]
    words = [[list(w.encode("utf-8")), c] for w, c in Counter(chunks).items() if w]
    merges = []
    while len(merges) < vocab_size - 256:
        counts = Counter()
        for ids, c in words:
            for p in zip(ids, ids[1:]):
                counts[p] += c
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))
        if counts[pair] < min_count:
            break
        new = 256 + len(merges)
        merges.append(pair)
        for w in words:
            ids, out, i = w[0], [], 0
            while i < len(ids):
                if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                    out.append(new)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            w[0] = out
    return merges


def naive_encode(tok, text):
    """Replay the merges in learned order, each over the whole chunk, left to right."""
    out = []
    for chunk in tok._chunks(text):
        ids = list(chunk)
        for r, pair in enumerate(tok.merges):
            i, merged = 0, []
            while i < len(ids):
                if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                    merged.append(256 + r)
                    i += 2
                else:
                    merged.append(ids[i])
                    i += 1
            ids = merged
        out.extend(ids)
    return out


def random_unicode(rng, n):
    """A random string mixing ASCII, accents, CJK, emoji, combining marks and spaces."""
    ranges = [(0x20, 0x7E), (0x0, 0x1F), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x4FF),
              (0x4E00, 0x4E80), (0x3040, 0x30FF), (0xAC00, 0xAC40), (0x1F300, 0x1F64F),
              (0x2000, 0x206F), (0xE000, 0xE010), (0x10000, 0x10020), (0x10FFF0, 0x10FFFF)]
    out = []
    for _ in range(n):
        lo, hi = rng.choice(ranges)
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def test_wikipedia_example_merge_by_merge(capsys):
    # aaabdaaabac: aa first (4 times, overlaps included), then ab (2 times; it wins the tie
    # with (aa, a) by smaller ids), then (aa, ab); then no pair occurs twice, so training
    # stops at 259 tokens
    tok = BPETokenizer.train("aaabdaaabac", 300, pattern=None, verbose=True)
    assert tok.merges == [(97, 97), (97, 98), (256, 257)]
    assert len(tok) == 259 and tok.vocab[258] == b"aaab"
    assert tok.trace() == [MergeStep(0, (97, 97), 256, b"aa", 4),
                           MergeStep(1, (97, 98), 257, b"ab", 2),
                           MergeStep(2, (256, 257), 258, b"aaab", 2)]
    assert tok.trace(1) == tok.trace()[:1]
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3 and "b'aaab'" in printed[2] and "count 2" in printed[2]
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.pieces("aaabdaaabac") == ["aaab", "d", "aaab", "a", "c"]
    assert tok.bytes_per_token("aaabdaaabac") == 11 / 5
    assert "259 tokens" in repr(tok) and "no pre-tokenization" in repr(tok)


def test_overlapping_pairs_merge_left_to_right():
    tok = BPETokenizer.train("aaaa aaaaa", 258, pattern=None, min_count=1)
    assert tok.merges == [(97, 97), (256, 256)]
    assert tok.counts == [7, 2]  # 3 + 4 overlapping "aa"s, then "aa aa" twice
    assert tok.encode("aaaaa") == [257, 97]
    assert tok.encode("aaa") == [256, 97]


@pytest.mark.parametrize("pattern", [GPT2_PATTERN, None], ids=["gpt2-regex", "no-regex"])
def test_incremental_training_equals_naive_recounting(pattern):
    rng = random.Random(0)
    words = ["the", " the", " a", "aa", "aaa", "ab", "ba", " then", "there", ".", ",", " ", "\n"]
    texts = ["".join(rng.choice(words) for _ in range(300)) for _ in range(3)]
    texts.append(load_text()[5000:9000])
    for text in texts:
        tok = BPETokenizer.train(text, 330, pattern=pattern)
        assert tok.merges == naive_merges(text, 330, pattern)
        assert tok.encode(text) == naive_encode(tok, text)


def test_round_trip_on_whole_corpus(corpus, tok512):
    text = corpus[0]
    ids = tok512.encode(text)
    assert tok512.decode(ids) == text
    assert max(ids) < len(tok512) == 512 and len(tok512.merges) == 256
    # the learned vocabulary is real subwords of this text
    assert b" the" in tok512.vocab and b" attribute" in tok512.vocab


def test_no_merge_crosses_a_chunk_with_the_regex(tok512):
    for token in tok512.vocab[256:]:
        text = token.decode("utf-8")
        assert [m.group(0) for m in re.finditer(GPT2_PATTERN, text)] == [text], token


def test_round_trip_on_arbitrary_unicode(tok512):
    multilingual = BPETokenizer.train(" ".join(UNICODE_SAMPLES) * 3, 400, min_count=1)
    assert len(multilingual.merges) > 50
    for tok in (tok512, multilingual, BPETokenizer()):
        for text in UNICODE_SAMPLES:
            assert tok.decode(tok.encode(text)) == text, (tok, text)


@pytest.mark.parametrize("pattern", [GPT2_PATTERN, None], ids=["gpt2-regex", "no-regex"])
def test_round_trip_property_random_strings(pattern):
    rng = random.Random(1234)
    train = "".join(random_unicode(rng, 40) + " the cat " for _ in range(60))
    tok = BPETokenizer.train(train, 400, pattern=pattern)
    assert len(tok.merges) > 20
    for _ in range(200):
        text = random_unicode(rng, rng.randint(0, 60))
        ids = tok.encode(text)
        assert tok.decode(ids) == text and tok.decode_bytes(ids) == text.encode("utf-8")
        assert all(0 <= i < len(tok) for i in ids)
        assert ids == naive_encode(tok, text)


def test_lone_surrogates_are_refused(tok512):
    with pytest.raises(ValueError, match="surrogate"):
        tok512.encode("ok \ud800 not ok")
    with pytest.raises(ValueError, match="position 3"):
        BPETokenizer.train("ok \udfff", 300)


def test_decode_of_arbitrary_ids_replaces_invalid_utf8(tok512):
    euro = tok512.encode("€")
    assert euro == [0xE2, 0x82, 0xAC] and tok512.decode(euro) == "€"
    assert tok512.decode(euro[:2]) == "\ufffd"  # an incomplete character
    assert tok512.decode([0xFF, 104, 105]) == "\ufffdhi"  # a byte that never starts UTF-8
    assert tok512.decode_bytes([0xFF, 104]) == b"\xffh"
    rng = random.Random(5)
    for _ in range(50):
        ids = [rng.randrange(len(tok512)) for _ in range(rng.randint(0, 30))]
        text = tok512.decode(ids)  # never fails, and is always valid text
        assert text.encode("utf-8").decode("utf-8") == text
    assert tok512.decode(torch.tensor(tok512.encode("a tensor"))) == "a tensor"
    assert tok512.decode([]) == ""
    assert tok512.decode([np.int64(104), np.int32(105)]) == "hi"


def test_bad_input_raises_clear_errors(tok512):
    with pytest.raises(ValueError, match="vocab_size must be an int >= 256"):
        BPETokenizer.train("some text", 255)
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer.train("some text", "512")
    assert len(BPETokenizer.train("abab abab", np.int64(257))) == 257
    with pytest.raises(ValueError, match="text must be a str, got bytes"):
        BPETokenizer.train(b"some text", 300)
    with pytest.raises(ValueError, match="text must be a str, got NoneType"):
        tok512.encode(None)
    with pytest.raises(ValueError, match="min_count"):
        BPETokenizer.train("some text", 300, min_count=0)
    with pytest.raises(ValueError, match=r"outside the vocabulary \(0\.\.511\)"):
        tok512.decode([5, 512])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok512.decode([-1])
    with pytest.raises(ValueError, match="ids must be ints"):
        tok512.decode([1.5])
    with pytest.raises(ValueError, match="sequence of ints"):
        tok512.decode("abc")
    with pytest.raises(ValueError, match="cover"):
        BPETokenizer.train("a b c", 300, pattern=r"\w")
    with pytest.raises(ValueError, match="earlier merges"):
        BPETokenizer([(97, 256)])
    with pytest.raises(ValueError, match="pair of ids"):
        BPETokenizer([(97,)])
    with pytest.raises(ValueError, match="non-empty"):
        tok512.bytes_per_token("")


def test_short_text_stops_early_and_untrained_is_bytes():
    tok = BPETokenizer.train("ab ab ab", 1000)
    assert 256 < len(tok) < 1000
    raw = BPETokenizer()
    assert len(raw) == 256 and raw.encode("hé") == [104, 0xC3, 0xA9]
    assert raw.bytes_per_token("hé") == 1.0


def test_save_and_load(tmp_path, tok512, corpus):
    path = tmp_path / "bpe.json"
    tok512.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded.merges == tok512.merges and loaded.vocab == tok512.vocab
    assert loaded.pattern == GPT2_PATTERN and loaded.counts == tok512.counts
    sample = corpus[2][:3000]
    assert loaded.encode(sample) == tok512.encode(sample)
    assert path.stat().st_size < 20_000
    with pytest.raises(ValueError, match="not a saved BPETokenizer"):
        BPETokenizer.from_dict({"merges": []})


def test_training_is_fast_and_compresses(corpus, tok512):
    start = time.perf_counter()
    tok = BPETokenizer.train(corpus[1], 1024)
    assert time.perf_counter() - start < 20  # about 0.2 s; the naive loop takes ~10 s
    held_out = corpus[2]
    assert 2.0 < tok512.bytes_per_token(held_out) < tok.bytes_per_token(held_out)


@pytest.mark.parametrize("vocab_size", [512, 1024])
def test_compression_within_3_percent_of_huggingface(corpus, vocab_size):
    tokenizers = pytest.importorskip(
        "tokenizers", reason="Hugging Face 'tokenizers' is a test-only dependency (pip install tokenizers)")
    from tokenizers import decoders, models, pre_tokenizers, trainers

    _, train, held_out = corpus
    # A fair set-up: byte-level BPE with GPT-2's regex (ByteLevel pre-tokenizer, no prefix
    # space added), all 256 bytes in the alphabet and counted in vocab_size, no special
    # tokens, the same minimum pair count, and the ByteLevel decoder.
    hf = tokenizers.Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    hf.train_from_iterator([train], trainer=trainer)
    assert hf.get_vocab_size() == vocab_size

    ours = BPETokenizer.train(train, vocab_size)
    assert len(ours) == vocab_size
    for text in (train, held_out):
        hf_ids = hf.encode(text).ids
        assert hf.decode(hf_ids) == text
        ours_bpt = ours.bytes_per_token(text)
        hf_bpt = len(text.encode("utf-8")) / len(hf_ids)
        assert abs(ours_bpt - hf_bpt) <= 0.03 * hf_bpt, (vocab_size, ours_bpt, hf_bpt)
