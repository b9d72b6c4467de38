"""scikit-learn's handwritten digits (1,797 images of 8x8 pixels) as PyTorch tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DigitsSplit:
    """Images ``(N, 1, 8, 8)`` scaled to [0, 1] and labels ``(N,)`` for train and test."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def train(self):
        return self.X_train, self.y_train

    @property
    def test(self):
        return self.X_test, self.y_test


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> DigitsSplit:
    """A deterministic, stratified train/test split of the digits.

    The same ``seed`` gives the same split on every machine.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The digits data ships with scikit-learn, which is not installed. "
            "Install it with: pip install scikit-learn"
        ) from exc
    data = load_digits()
    X = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    idx = torch.arange(len(y)).numpy()
    tr, te = train_test_split(
        idx, test_size=test_fraction, random_state=seed, stratify=y.numpy()
    )
    tr, te = torch.as_tensor(tr), torch.as_tensor(te)
    return DigitsSplit(X[tr], y[tr], X[te], y[te])


def split_off_validation(X: torch.Tensor, y: torch.Tensor, fraction: float = 0.2,
                         seed: int = 0) -> tuple:
    """Carve a stratified validation set out of training data: ``(X_fit, y_fit), (X_val, y_val)``.

    Choices (recipe, number of epochs) are made on the validation set, so the test set is
    used only for the numbers a chapter reports. The same ``seed`` gives the same split.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    from sklearn.model_selection import train_test_split

    fit_idx, val_idx = train_test_split(
        torch.arange(len(y)).numpy(), test_size=fraction, random_state=seed, stratify=y.numpy()
    )
    fit_idx, val_idx = torch.as_tensor(fit_idx), torch.as_tensor(val_idx)
    return (X[fit_idx], y[fit_idx]), (X[val_idx], y[val_idx])


def shift_images(x: torch.Tensor, dx: int = 0, dy: int = 0) -> torch.Tensor:
    """Shift images ``(..., H, W)`` right by ``dx`` and down by ``dy`` pixels, filling with 0.

    Negative values shift left / up. Pixels pushed over the edge are lost.
    """
    if x.dim() < 2:
        raise ValueError(f"expected images (..., H, W), got shape {tuple(x.shape)}")
    H, W = x.shape[-2:]
    if abs(dx) >= W or abs(dy) >= H:
        return torch.zeros_like(x)
    out = torch.zeros_like(x)
    src_y = slice(max(0, -dy), H - max(0, dy))
    dst_y = slice(max(0, dy), H - max(0, -dy))
    src_x = slice(max(0, -dx), W - max(0, dx))
    dst_x = slice(max(0, dx), W - max(0, -dx))
    out[..., dst_y, dst_x] = x[..., src_y, src_x]
    return out


def random_shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Shift each image of a batch ``(N, C, H, W)`` by a random offset in
    ``[-max_shift, max_shift]`` on each axis (data augmentation), filling with 0.

    Equal to ``shift_images(x[i], dx, dy)`` per image, done for the whole batch at once:
    pad every image by ``max_shift``, view all its ``H x W`` crops, pick one per image.
    """
    if x.dim() != 4:
        raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(x.shape)}")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    N, C, H, W = x.shape
    m = max_shift
    offsets = torch.randint(-m, m + 1, (N, 2), generator=generator)  # (dx, dy) per image
    padded = torch.nn.functional.pad(x, (m, m, m, m))
    crops = padded.unfold(2, H, 1).unfold(3, W, 1)  # (N, C, 2m+1, 2m+1, H, W), a view
    # shifting right by dx means reading the crop that starts dx pixels left of centre
    rows, cols = (m - offsets[:, 1]).to(x.device), (m - offsets[:, 0]).to(x.device)
    return crops[torch.arange(N, device=x.device), :, rows, cols]
