# ---
# id: diffusion-noise-ddim
# title: One jump of the forward process, one DDIM step
# kind: implement
# points: 3
# ---

# %% [markdown]
# Write the two formulas the chapter's training and sampling rest on, for vectors `x`
# of shape `(n, 64)` and noise levels given as plain numbers ($\bar\alpha$ values):
#
# - `add_noise(x0, alpha_bar, noise)`: a sample of $q(x_t \mid x_0)$ in one jump,
#   $\sqrt{\bar\alpha}\, x_0 + \sqrt{1-\bar\alpha}\, \varepsilon$, using the given `noise`;
# - `ddim_step(x_t, eps, alpha_bar, alpha_bar_next)`: one DDIM step without clipping.
#   Estimate the clean image from the predicted noise `eps`,
#   $\hat x_0 = (x_t - \sqrt{1-\bar\alpha}\,\hat\varepsilon) / \sqrt{\bar\alpha}$, and
#   re-noise it to the next level, $\sqrt{\bar\alpha_{\text{next}}}\,\hat x_0 +
#   \sqrt{1-\bar\alpha_{\text{next}}}\,\hat\varepsilon$.
#
# The check compares both with the formulas on several inputs (among them the last step,
# to $\bar\alpha_{\text{next}} = 1$) and refuses the course's `Schedule.add_noise` and
# `sample_ddim`.

# %% [solution]
import math


def add_noise(x0, alpha_bar, noise):
    ### BEGIN SOLUTION
    return math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * noise
    ### END SOLUTION


def ddim_step(x_t, eps, alpha_bar, alpha_bar_next):
    ### BEGIN SOLUTION
    x0_hat = (x_t - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)
    return math.sqrt(alpha_bar_next) * x0_hat + math.sqrt(1 - alpha_bar_next) * eps
    ### END SOLUTION

# %% [check]
from fromscratch.checks.diffusion import check_noise_and_ddim

check_noise_and_ddim(add_noise, ddim_step)

# %% [mistake] variances as weights | expect: their square roots
def add_noise(x0, alpha_bar, noise):
    return alpha_bar * x0 + (1 - alpha_bar) * noise


def ddim_step(x_t, eps, alpha_bar, alpha_bar_next):
    return x_t

# %% [mistake] image not shrunk | expect: multiply x0 by sqrt(alpha_bar)
import math


def add_noise(x0, alpha_bar, noise):
    return x0 + math.sqrt(1 - alpha_bar) * noise


def ddim_step(x_t, eps, alpha_bar, alpha_bar_next):
    return x_t

# %% [mistake] re-noising x_t instead of the clean estimate | expect: first estimate the clean image
import math


def add_noise(x0, alpha_bar, noise):
    return math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * noise


def ddim_step(x_t, eps, alpha_bar, alpha_bar_next):
    return math.sqrt(alpha_bar_next) * x_t + math.sqrt(1 - alpha_bar_next) * eps

# %% [mistake] returning the clean estimate | expect: you returned the clean-image estimate
import math


def add_noise(x0, alpha_bar, noise):
    return math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * noise


def ddim_step(x_t, eps, alpha_bar, alpha_bar_next):
    return (x_t - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)

# %% [mistake] the course's functions | expect: an existing implementation
import torch

from fromscratch.models.diffusion import Schedule


def add_noise(x0, alpha_bar, noise):
    return Schedule(1000).add_noise(x0, torch.zeros(len(x0), dtype=torch.long), noise)


def ddim_step(x_t, eps, alpha_bar, alpha_bar_next):
    return x_t

# %% [mistake] changing the caller's tensor in place | expect: changed its input tensors
import math


def add_noise(x0, alpha_bar, noise):
    return x0.mul_(math.sqrt(alpha_bar)).add_(math.sqrt(1 - alpha_bar) * noise)


def ddim_step(x_t, eps, alpha_bar, alpha_bar_next):
    return x_t
