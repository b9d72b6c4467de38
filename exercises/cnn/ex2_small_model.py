# ---
# id: cnn-small-model
# title: A CNN under 5,000 parameters
# kind: model
# points: 3
# ---

# %% [markdown]
# The chapter's `DigitsCNN` has 53,002 parameters. Change the model: write
# `make_small_cnn()` returning a network with **at most 5,000 parameters** that still
# reaches **95% test accuracy** on the digits. It takes images `(N, 1, 8, 8)` and returns
# logits `(N, 10)`. It must be a CNN: at least one convolution (this chapter's `Conv2d` or
# `nn.Conv2d`), with `MaxPool2d` or `nn.MaxPool2d` for pooling.
# The check trains your model for 20 epochs (Adam, learning rate 0.01 with cosine decay,
# shift augmentation; about 5 s).
# Where do most of `DigitsCNN`'s parameters sit: in the convolutions or in the dense head?

# %% [solution]
import torch.nn as nn
from fromscratch.models.cnn import Conv2d, MaxPool2d


def make_small_cnn():
    ### BEGIN SOLUTION
    return nn.Sequential(
        Conv2d(1, 12, 3, padding=1), nn.ReLU(), MaxPool2d(2),  # (N, 12, 4, 4)
        Conv2d(12, 24, 3, padding=1), nn.ReLU(), MaxPool2d(2),  # (N, 24, 2, 2)
        nn.Flatten(), nn.Linear(24 * 2 * 2, 10),  # 970 of the 3,706 parameters
    )
    ### END SOLUTION

# %% [check]
from fromscratch.checks.cnn import check_small_cnn

check_small_cnn(make_small_cnn)

# %% [mistake] the chapter's model, too big | expect: the budget is 5,000
from fromscratch.models.cnn import CNNConfig, DigitsCNN


def make_small_cnn():
    return DigitsCNN(CNNConfig())

# %% [mistake] head with the wrong input size | expect: in_features must
import torch.nn as nn
from fromscratch.models.cnn import Conv2d, MaxPool2d


def make_small_cnn():
    return nn.Sequential(Conv2d(1, 8, 3, padding=1), nn.ReLU(), MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 8 * 8, 10))

# %% [mistake] a big model with most of it frozen | expect: frozen parameters
from fromscratch.models.cnn import CNNConfig, DigitsCNN


def make_small_cnn():
    model = DigitsCNN(CNNConfig())
    for p in [*model.block1.parameters(), *model.block2.parameters()]:
        p.requires_grad_(False)
    return model

# %% [mistake] no pooling (strided convolutions) | expect: no max-pooling layer
import torch.nn as nn
from fromscratch.models.cnn import Conv2d


def make_small_cnn():
    return nn.Sequential(Conv2d(1, 12, 3, stride=2, padding=1), nn.ReLU(),
                         Conv2d(12, 24, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(24 * 2 * 2, 10))

# %% [mistake] far too narrow | expect: the bar is 95.0% test accuracy
import torch.nn as nn
from fromscratch.models.cnn import Conv2d, MaxPool2d


def make_small_cnn():
    return nn.Sequential(Conv2d(1, 1, 3, padding=1), MaxPool2d(4), nn.Flatten(), nn.Linear(4, 10))

# %% [mistake] an MLP, not a CNN | expect: your model has no convolution layer
import torch.nn as nn


def make_small_cnn():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
