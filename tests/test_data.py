import pytest
import torch

from fromscratch.data import (
    CharVocab,
    char_windows,
    load_digits_split,
    load_text,
    random_shift,
    remember_first,
    shift_images,
)


def test_digits_split_is_deterministic_and_stratified():
    a, b = load_digits_split(seed=0), load_digits_split(seed=0)
    assert torch.equal(a.X_test, b.X_test) and torch.equal(a.y_train, b.y_train)
    assert a.X_train.shape == (1347, 1, 8, 8) and a.X_test.shape == (450, 1, 8, 8)
    assert 0.0 <= a.X_train.min() and a.X_train.max() <= 1.0
    counts = torch.bincount(a.y_test, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 46
    assert not torch.equal(load_digits_split(seed=1).y_test, a.y_test)
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits_split(test_fraction=1.5)


def test_shift_images_moves_pixels_and_fills_zeros():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    right = shift_images(x, dx=1)
    assert torch.equal(right[..., 1:], x[..., :-1]) and right[..., 0].abs().sum() == 0
    down = shift_images(x, dy=-2)
    assert torch.equal(down[..., :2, :], x[..., 2:, :])
    assert shift_images(x, dx=4).abs().sum() == 0


def test_random_shift_is_seeded_and_bounded():
    x = torch.rand(32, 1, 8, 8)
    a = random_shift(x, torch.Generator().manual_seed(0))
    b = random_shift(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    # each image equals its original moved by at most one pixel
    for i in range(32):
        assert any(torch.equal(a[i], shift_images(x[i], dx, dy))
                   for dx in (-1, 0, 1) for dy in (-1, 0, 1))


def test_random_shift_equals_shift_images_per_image():
    x = torch.rand(40, 2, 8, 9)
    out = random_shift(x, torch.Generator().manual_seed(3), max_shift=2)
    offsets = torch.randint(-2, 3, (40, 2), generator=torch.Generator().manual_seed(3))
    for i, (dx, dy) in enumerate(offsets.tolist()):
        assert torch.equal(out[i], shift_images(x[i], dx, dy)), (i, dx, dy)
    with pytest.raises(ValueError, match="batch"):
        random_shift(x[0], torch.Generator())


def test_remember_first_task():
    X, y = remember_first(100, 20, n_symbols=4, n_noise=3, seed=0)
    assert X.shape == (100, 20) and torch.equal(X[:, 0], y)
    assert X[:, 1:].min() >= 4 and X[:, 1:].max() <= 6
    X2, _ = remember_first(100, 20, n_symbols=4, n_noise=3, seed=0)
    assert torch.equal(X, X2)
    with pytest.raises(ValueError):
        remember_first(10, 0)


def test_text_corpus_and_vocabulary_round_trip():
    text = load_text(max_chars=5000)
    assert len(text) == 5000 and text.isascii()
    vocab = CharVocab.from_text(text)
    assert vocab.decode(vocab.encode(text)) == text
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("\u00e9")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([len(vocab)])


def test_char_windows_targets_are_shifted_inputs():
    ids = torch.arange(50)
    X, Y = char_windows(ids, block=8)
    assert X.shape[1] == 8 and torch.equal(Y, X + 1)
    with pytest.raises(ValueError, match="too short"):
        char_windows(torch.arange(5), block=8)


def test_shipped_snapshot_is_fixed_and_matches_python_311_text():
    import sys

    text = load_text()
    assert len(text) == 200_000 and text.startswith(load_text(max_chars=100))
    if sys.version_info[:2] == (3, 11):
        assert load_text(source="python").startswith(text[:50_000])
    with pytest.raises(ValueError, match="snapshot has"):
        load_text(max_chars=10**7)
    with pytest.raises(ValueError, match="source"):
        load_text(source="web")


def test_validation_split_is_carved_from_training_data_stratified_and_seeded():
    from fromscratch.data import split_off_validation

    split = load_digits_split()
    (Xf, yf), (Xv, yv) = split_off_validation(*split.train, fraction=0.2, seed=0)
    assert len(yf) + len(yv) == len(split.y_train) and len(yv) == 270
    assert torch.equal(torch.cat([yf, yv]).sort().values, split.y_train.sort().values)
    assert torch.bincount(yv, minlength=10).min() >= 26
    (_, _), (Xv2, _) = split_off_validation(*split.train, fraction=0.2, seed=0)
    assert torch.equal(Xv, Xv2)
    with pytest.raises(ValueError, match="fraction"):
        split_off_validation(*split.train, fraction=0.0)
