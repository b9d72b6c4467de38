# ---
# id: cnn-max-pool
# title: Max pooling from scratch
# kind: implement
# points: 3
# ---

# %% [markdown]
# Write `max_pool2d(x, kernel_size, stride=None)` for a batch `x` of shape `(N, C, H, W)`:
# every output pixel is the **largest** value of one `kernel_size x kernel_size` window,
# separately for each image and channel. The window moves by `stride` pixels
# (`stride=None` means `stride = kernel_size`). Use only tensor indexing and reductions
# (`unfold_patches` from this chapter helps). Windows that do not fit completely are
# dropped, so a 7x9 input with 2x2 windows gives 3x4. The check compares with
# `F.max_pool2d` and refuses answers that call an existing max pooling (the course's
# `max_pool2d` / `MaxPool2d`, or PyTorch's).

# %% [solution]
import torch
from fromscratch.models.cnn import unfold_patches


def max_pool2d(x, kernel_size, stride=None):
    ### BEGIN SOLUTION
    stride = kernel_size if stride is None else stride
    k = kernel_size
    patches = unfold_patches(x, k, k, stride)  # (N, Ho, Wo, C, k, k)
    return patches.amax(dim=(-1, -2)).permute(0, 3, 1, 2)  # (N, C, Ho, Wo)
    ### END SOLUTION

# %% [check]
from fromscratch.checks.cnn import check_max_pool2d

check_max_pool2d(max_pool2d)

# %% [mistake] average instead of maximum | expect: *average*
from fromscratch.models.cnn import unfold_patches


def max_pool2d(x, kernel_size, stride=None):
    stride = stride or kernel_size
    return unfold_patches(x, kernel_size, kernel_size, stride).mean(dim=(-1, -2)).permute(0, 3, 1, 2)

# %% [mistake] stride ignored | expect: stride argument is ignored
from fromscratch.models.cnn import unfold_patches


def max_pool2d(x, kernel_size, stride=None):
    return unfold_patches(x, kernel_size, kernel_size, kernel_size).amax(dim=(-1, -2)).permute(0, 3, 1, 2)

# %% [mistake] running maximum started at 0 | expect: start the running maximum at -inf
import torch


def max_pool2d(x, kernel_size, stride=None):
    stride = stride or kernel_size
    N, C, H, W = x.shape
    Ho, Wo = (H - kernel_size) // stride + 1, (W - kernel_size) // stride + 1
    out = torch.zeros(N, C, Ho, Wo)
    for i in range(Ho):
        for j in range(Wo):
            for u in range(kernel_size):
                for v in range(kernel_size):
                    out[:, :, i, j] = torch.maximum(out[:, :, i, j], x[:, :, i * stride + u, j * stride + v])
    return out

# %% [mistake] reshape into blocks | expect: when H or W is not a multiple of the window
from fromscratch.models.cnn import unfold_patches


def max_pool2d(x, kernel_size, stride=None):
    k = kernel_size
    if stride is None or stride == k:  # non-overlapping: cut the image into k x k blocks
        N, C, H, W = x.shape
        return x.reshape(N, C, H // k, k, W // k, k).amax(dim=(3, 5))
    return unfold_patches(x, k, k, stride).amax(dim=(-1, -2)).permute(0, 3, 1, 2)

# %% [mistake] ceil mode: partial windows kept | expect: windows that hang over the border
import math

import torch
from fromscratch.models.cnn import unfold_patches


def max_pool2d(x, kernel_size, stride=None):
    k = kernel_size
    stride = k if stride is None else stride
    N, C, H, W = x.shape
    Ho, Wo = math.ceil((H - k) / stride) + 1, math.ceil((W - k) / stride) + 1
    padded = x.new_full((N, C, (Ho - 1) * stride + k, (Wo - 1) * stride + k), -math.inf)
    padded[:, :, :H, :W] = x
    return unfold_patches(padded, k, k, stride).amax(dim=(-1, -2)).permute(0, 3, 1, 2)

# %% [mistake] calls the course's max_pool2d | expect: your code calls `fromscratch.models.cnn.max_pool2d`
from fromscratch.models.cnn import max_pool2d as course_max_pool2d


def max_pool2d(x, kernel_size, stride=None):
    return course_max_pool2d(x, kernel_size, stride)

# %% [mistake] uses the course's MaxPool2d layer | expect: your code calls `fromscratch.models.cnn.MaxPool2d.forward`
from fromscratch.models.cnn import MaxPool2d


def max_pool2d(x, kernel_size, stride=None):
    return MaxPool2d(kernel_size, stride)(x)

# %% [mistake] calls F.max_pool2d | expect: your code calls `torch.nn.functional.max_pool2d`
import torch.nn.functional as F


def max_pool2d(x, kernel_size, stride=None):
    return F.max_pool2d(x, kernel_size, stride)

# %% [mistake] uses nn.MaxPool2d | expect: your code calls `torch.nn.functional.max_pool2d`
import torch.nn as nn


def max_pool2d(x, kernel_size, stride=None):
    return nn.MaxPool2d(kernel_size, stride)(x)

# %% [mistake] calls torch.max_pool2d | expect: your code calls `torch.max_pool2d`
import torch


def max_pool2d(x, kernel_size, stride=None):
    return torch.max_pool2d(x, kernel_size, kernel_size if stride is None else stride)
