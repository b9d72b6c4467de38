# ---
# id: gan-ring-generator
# title: A generator for the ring
# kind: model
# points: 3
# ---

# %% [markdown]
# Build a generator for a ring of Gaussians: write `make_generator(latent)` returning
# an `nn.Module` that maps noise `z` of shape `(n, latent)` to points `(n, 2)` in the
# plane. So that a generator must learn its ring rather than know the chapter's, the
# check draws a ring at check time: 7 or 9 modes (never the chapter's 8) on a circle of
# radius 2.3 to 2.5, turned by a random angle. It trains your generator against its own
# discriminator with the ring recipe of the chapter (non-saturating loss, Adam with
# learning rate 0.003, batches of 128, 1,500 steps) with `latent=4`, twice (two seeds,
# from the same initial weights; a GAN run can collapse by chance, so the better run
# counts; about 6 s), then draws 1,000 points and requires **5/8 of the modes covered**
# (5 of 7, or 6 of 9) and a **quality of at least 0.4** (share of points within 3
# standard deviations of a centre; real samples score 0.99, a fitted Gaussian 0.01). The
# points must come from `z` (the same `z` gives the same points, a different `z`
# different ones), `latent` must set the size of the noise, and training must change
# them. The course's `Generator` is refused. Think about what the last layer must be
# able to output: the centres lie on a circle of radius above 2.

# %% [solution]
import torch.nn as nn


def make_generator(latent):
    ### BEGIN SOLUTION
    return nn.Sequential(nn.Linear(latent, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, 2))
    ### END SOLUTION

# %% [check]
from fromscratch.checks.gan import check_ring_generator

check_ring_generator(make_generator)

# %% [mistake] the course's generator | expect: the course's Generator
from fromscratch.models.gan import RING_CONFIG, Generator


def make_generator(latent):
    return Generator(RING_CONFIG)

# %% [mistake] a linear generator | expect: the bar is
import torch.nn as nn


def make_generator(latent):
    return nn.Sequential(nn.Linear(latent, 32), nn.Linear(32, 2))

# %% [mistake] a sigmoid at the end | expect: outputs stay in
import torch.nn as nn


def make_generator(latent):
    return nn.Sequential(nn.Linear(latent, 32), nn.ReLU(), nn.Linear(32, 2), nn.Sigmoid())

# %% [mistake] points of the wrong size | expect: expected: an output of shape
import torch.nn as nn


def make_generator(latent):
    return nn.Sequential(nn.Linear(latent, 32), nn.ReLU(), nn.Linear(32, 3))

# %% [mistake] the course's generator, wrapped | expect: the course's Generator
import torch.nn as nn
from fromscratch.models.gan import RING_CONFIG, Generator


def make_generator(latent):
    return nn.Sequential(Generator(RING_CONFIG))

# %% [mistake] its own noise instead of z | expect: draws its own randomness
import torch
import torch.nn as nn


class OwnNoise(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, z):
        return self.net(torch.randn_like(z))


def make_generator(latent):
    return OwnNoise(latent)

# %% [mistake] a fixed noise size | expect: use the latent argument
import torch.nn as nn


def make_generator(latent):
    return nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, 2))

# %% [mistake] a fixed mixture with a dummy parameter | expect: centres it knows
import torch
import torch.nn as nn
from fromscratch.models import gan as G


class FixedMixture(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, z):
        k = (z[:, 0].abs() * 1000).long() % 8
        return G.ring_centres()[k] + 0.0 * self.dummy


def make_generator(latent):
    return FixedMixture(latent)
