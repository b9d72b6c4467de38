"""Convolutional networks from scratch (chapter 1).

References: LeCun et al. 1998, "Gradient-based learning applied to document recognition";
Krizhevsky et al. 2012 (AlexNet); Dumoulin & Visin 2016, "A guide to convolution arithmetic".

Convolution is written twice: ``conv2d_loops`` (the definition, four nested loops) and
``conv2d_unfold`` (im2col: cut out every patch once, then one matrix multiply). Both
equal ``torch.nn.functional.conv2d``; the tests check it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import pick


def conv_output_size(n: int, kernel: int, padding: int = 0, stride: int = 1) -> int:
    """Output length along one axis: ``floor((n + 2 * padding - kernel) / stride) + 1``."""
    if n + 2 * padding < kernel:
        raise ValueError(f"kernel {kernel} is larger than the padded input {n} + 2*{padding}")
    return (n + 2 * padding - kernel) // stride + 1


def _check_conv_args(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int):
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(
            f"expected x (N, C_in, H, W) and weight (C_out, C_in, kH, kW), got "
            f"{tuple(x.shape)} and {tuple(weight.shape)}"
        )
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but weight expects {weight.shape[1]}")
    if stride < 1 or padding < 0:
        raise ValueError(f"need stride >= 1 and padding >= 0, got {stride} and {padding}")


def pad2d(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Zero-pad the last two axes of ``x`` by ``padding`` on every side."""
    if padding == 0:
        return x
    p = padding
    return F.pad(x, (p, p, p, p))  # (left, right, top, bottom) of the last two axes


def conv2d_loops(x, weight, bias=None, stride: int = 1, padding: int = 0) -> torch.Tensor:
    """2-D convolution (cross-correlation, as in PyTorch) by its definition: slow, clear.

    out[n, o, i, j] = bias[o] + sum_{c, u, v} x_pad[n, c, i*s + u, j*s + v] * weight[o, c, u, v]
    """
    _check_conv_args(x, weight, stride, padding)
    N, C, H, W = x.shape
    O, _, kH, kW = weight.shape
    xp = pad2d(x, padding)
    Ho, Wo = conv_output_size(H, kH, padding, stride), conv_output_size(W, kW, padding, stride)
    out = x.new_zeros(N, O, Ho, Wo)
    for n in range(N):
        for o in range(O):
            for i in range(Ho):
                for j in range(Wo):
                    patch = xp[n, :, i * stride : i * stride + kH, j * stride : j * stride + kW]
                    out[n, o, i, j] = (patch * weight[o]).sum()
            if bias is not None:
                out[n, o] += bias[o]
    return out


def unfold_patches(x: torch.Tensor, kH: int, kW: int, stride: int = 1) -> torch.Tensor:
    """All ``kH x kW`` patches of ``x (N, C, H, W)`` as ``(N, Ho, Wo, C, kH, kW)``.

    ``Tensor.unfold`` makes a view (no copy) that slides a window along one axis.
    """
    if x.dim() != 4:
        raise ValueError(f"expected x of shape (N, C, H, W), got {tuple(x.shape)}")
    if kH > x.shape[2] or kW > x.shape[3]:
        raise ValueError(f"a {kH}x{kW} window does not fit in a {x.shape[2]}x{x.shape[3]} input")
    return x.unfold(2, kH, stride).unfold(3, kW, stride).permute(0, 2, 3, 1, 4, 5)


def conv2d_unfold(x, weight, bias=None, stride: int = 1, padding: int = 0) -> torch.Tensor:
    """2-D convolution as one matrix multiply over all patches (im2col)."""
    _check_conv_args(x, weight, stride, padding)
    O, C, kH, kW = weight.shape
    patches = unfold_patches(pad2d(x, padding), kH, kW, stride)  # (N, Ho, Wo, C, kH, kW)
    N, Ho, Wo = patches.shape[:3]
    cols = patches.reshape(N, Ho, Wo, C * kH * kW)  # (N, Ho, Wo, C*kH*kW)
    out = cols @ weight.reshape(O, -1).T  # (N, Ho, Wo, O)
    if bias is not None:
        out = out + bias
    return out.permute(0, 3, 1, 2).contiguous()  # (N, O, Ho, Wo)


def max_pool2d(x: torch.Tensor, kernel_size: int, stride=None) -> torch.Tensor:
    """Max pooling: the largest value of each ``kernel_size`` window (stride defaults to it).

    A window that does not fit completely is dropped, as in ``F.max_pool2d``.
    """
    stride = kernel_size if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if x.dim() != 4:
        raise ValueError(f"expected x of shape (N, C, H, W), got {tuple(x.shape)}")
    k = kernel_size
    if k > x.shape[2] or k > x.shape[3]:
        raise ValueError(f"a {k}x{k} window does not fit in a {x.shape[2]}x{x.shape[3]} input")
    windows = x.unfold(2, k, stride).unfold(3, k, stride)  # (N, C, Ho, Wo, k, k), a view
    # max over one flattened axis: its backward is much faster than amax over two axes
    return windows.flatten(-2).max(dim=-1).values


class Conv2d(nn.Module):
    """A convolution layer built on :func:`conv2d_unfold`, with ``nn.Conv2d``'s parameter
    layout and initialisation. Square kernels, one stride and one padding for both axes."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        for name, value in (("kernel_size", kernel_size), ("stride", stride), ("padding", padding)):
            if not isinstance(value, int):
                raise TypeError(f"{name} must be an int (square kernels, same on both axes), "
                                f"got {value!r}")
        self.stride, self.padding = stride, padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        fan_in = in_channels * kernel_size * kernel_size
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default
        if self.bias is not None:
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return conv2d_unfold(x, self.weight, self.bias, self.stride, self.padding)


class MaxPool2d(nn.Module):
    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride)


@dataclass
class CNNConfig:
    """Sizes of :class:`DigitsCNN`. ``CNNConfig.default()`` follows ``FROMSCRATCH_SCALE``."""

    channels: tuple = (32, 64)  # output channels of the two conv blocks
    hidden: int = 128  # width of the fully connected layer
    dropout: float = 0.3
    n_classes: int = 10
    image_size: int = 8

    @classmethod
    def default(cls) -> CNNConfig:
        return pick(cls(), cls(channels=(128, 256), hidden=512, dropout=0.2))


class DigitsCNN(nn.Module):
    """Two conv blocks (3x3 conv, ReLU, 2x2 max-pool) then a small classifier head.

    8x8 -> conv -> 8x8 -> pool -> 4x4 -> conv -> 4x4 -> pool -> 2x2 -> linear -> classes
    """

    def __init__(self, config: CNNConfig = None):
        super().__init__()
        self.config = c = config or CNNConfig.default()
        c1, c2 = c.channels
        self.block1 = nn.Sequential(Conv2d(1, c1, 3, padding=1), nn.ReLU(), MaxPool2d(2))
        self.block2 = nn.Sequential(Conv2d(c1, c2, 3, padding=1), nn.ReLU(), MaxPool2d(2))
        side = c.image_size // 4
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * side * side, c.hidden),
            nn.ReLU(),
            nn.Dropout(c.dropout),
            nn.Linear(c.hidden, c.n_classes),
        )

    def feature_maps(self, x):
        """The activations after each conv block: ``[(N, c1, 4, 4), (N, c2, 2, 2)]``."""
        h1 = self.block1(x)
        h2 = self.block2(h1)
        return [h1, h2]

    def forward(self, x):  # x: (N, 1, 8, 8)
        return self.head(self.block2(self.block1(x)))


class MLP(nn.Module):
    """A fully connected baseline: flatten the image, then hidden layers with ReLU."""

    def __init__(self, in_features: int = 64, hidden=(128, 64), n_classes: int = 10):
        super().__init__()
        layers, width = [nn.Flatten()], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def dense_equivalent_params(in_shape: tuple, out_shape: tuple, bias: bool = True) -> int:
    """Parameters of a fully connected layer mapping ``in_shape`` to ``out_shape``
    (e.g. ``(1, 8, 8) -> (16, 8, 8)``): what a conv layer would cost without weight sharing."""
    n_in, n_out = math.prod(in_shape), math.prod(out_shape)
    return n_in * n_out + (n_out if bias else 0)
