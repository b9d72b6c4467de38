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
# (`unfold_patches` from this chapter helps; `F.max_pool2d` is what the check compares with,
# so don't call it).

# %% [solution]
import torch
from fromscratch.models.cnn import unfold_patches


def max_pool2d(x, kernel_size, stride=None):
    ### BEGIN SOLUTION
    stride = kernel_size if stride is None else stride
    patches = unfold_patches(x, kernel_size, kernel_size, stride)  # (N, Ho, Wo, C, k, k)
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
