# ---
# id: diffusion-noise-accuracy
# title: How much noise does a digit survive?
# kind: experiment
# points: 2
# ---

# %% [markdown]
# The forward process destroys the image gradually. When can a good classifier no
# longer read the digit? Write `accuracy_under_noise(images, labels, t, schedule)`:
# map the `images` (grey levels 0-16) to the model's space with `D.to_model_space`,
# noise them to step `t` in one jump with noise drawn as
# `torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))` (so the result
# repeats), map them back with `D.to_grey_levels`, and return the FD classifier's
# accuracy on them, `gen.label_accuracy(noisy, labels)`. Use $\bar\alpha_t$ =
# `schedule.alpha_bar[t]`, not `schedule.add_noise`. The check runs it on the test
# digits at step 400. Then try a few steps yourself: where does the accuracy fall below
# one half, and what is the signal-to-noise ratio there?

# %% [solution]
import math

import torch

from fromscratch import generative as gen
from fromscratch.models import diffusion as D


def accuracy_under_noise(images, labels, t, schedule):
    ### BEGIN SOLUTION
    x0 = D.to_model_space(images)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    ab = float(schedule.alpha_bar[t])
    x_t = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * noise
    return gen.label_accuracy(D.to_grey_levels(x_t), labels)
    ### END SOLUTION

# %% [check]
from fromscratch.checks.diffusion import check_accuracy_under_noise

check_accuracy_under_noise(accuracy_under_noise, split.X_test * 16, split.y_test, 400,
                           schedule)

# %% [setup]
from fromscratch.data import load_digits_split
from fromscratch.models import diffusion as D

split = load_digits_split()
schedule = D.Schedule(1000, "cosine")

# %% [mistake] variances as weights | expect: the weights are their square roots
import torch

from fromscratch import generative as gen
from fromscratch.models import diffusion as D


def accuracy_under_noise(images, labels, t, schedule):
    x0 = D.to_model_space(images)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    ab = float(schedule.alpha_bar[t])
    return gen.label_accuracy(D.to_grey_levels(ab * x0 + (1 - ab) * noise), labels)

# %% [mistake] noise added in grey levels | expect: instead of the model's [-1, 1] space
import math

import torch

from fromscratch import generative as gen


def accuracy_under_noise(images, labels, t, schedule):
    noise = torch.randn((len(images), 64), generator=torch.Generator().manual_seed(0))
    ab = float(schedule.alpha_bar[t])
    noisy = math.sqrt(ab) * images + math.sqrt(1 - ab) * noise.reshape(images.shape)
    return gen.label_accuracy(noisy.clamp(0, 16), labels)

# %% [mistake] error rate instead of accuracy | expect: 1 - accuracy
import math

import torch

from fromscratch import generative as gen
from fromscratch.models import diffusion as D


def accuracy_under_noise(images, labels, t, schedule):
    x0 = D.to_model_space(images)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    ab = float(schedule.alpha_bar[t])
    x_t = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * noise
    return 1 - gen.label_accuracy(D.to_grey_levels(x_t), labels)

# %% [mistake] the step before | expect: alpha_bar[t] includes step t itself
import math

import torch

from fromscratch import generative as gen
from fromscratch.models import diffusion as D


def accuracy_under_noise(images, labels, t, schedule):
    x0 = D.to_model_space(images)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    ab = float(torch.prod(schedule.alphas[:t]))
    x_t = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * noise
    return gen.label_accuracy(D.to_grey_levels(x_t), labels)

# %% [mistake] noise from the global generator | expect: draw it with generator=
import math

import torch

from fromscratch import generative as gen
from fromscratch.models import diffusion as D


def accuracy_under_noise(images, labels, t, schedule):
    x0 = D.to_model_space(images)
    ab = float(schedule.alpha_bar[t])
    x_t = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * torch.randn_like(x0)
    return gen.label_accuracy(D.to_grey_levels(x_t), labels)
