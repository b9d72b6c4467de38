# ---
# id: gan-ring-quality
# title: Measuring sample quality on the ring
# kind: experiment
# points: 2
# ---

# %% [markdown]
# Write `ring_quality(points)`: the share (between 0 and 1) of the `points` (a tensor
# `(n, 2)`) that lie within **3 standard deviations** ($3 \times 0.05$) of the
# **nearest** of the 8 centres of the ring (evenly spaced on a circle of radius 2,
# starting at $(2, 0)$; `G.ring_centres()` gives them). Every point counts, whether or
# not its mode counts as covered. The check runs it first on 37 test points placed at
# the edges of the definition, then on `ring_points`, 1,000 samples of the chapter's
# plain ring GAN (seed 4, after training), and compares with its own measurement. Then compare: what share does that seed reach,
# and what do the real samples reach?

# %% [solution]
import torch
from fromscratch.models import gan as G


def ring_quality(points):
    ### BEGIN SOLUTION
    d = torch.cdist(points.float(), G.ring_centres())  # (n, 8) distances to the centres
    return (d.min(dim=1).values <= 3 * 0.05).float().mean().item()
    ### END SOLUTION

# %% [check]
from fromscratch.checks.gan import check_ring_quality

check_ring_quality(ring_quality, ring_points)

# %% [setup]
import torch
from fromscratch.models import gan as G

_g = torch.Generator().manual_seed(0)
ring_points = torch.cat([G.ring_of_gaussians(700, _g),
                         6 * torch.rand(300, 2, generator=_g) - 3])

# %% [mistake] within one standard deviation | expect: within 1 standard deviation
import torch
from fromscratch.models import gan as G


def ring_quality(points):
    d = torch.cdist(points, G.ring_centres())
    return (d.min(dim=1).values <= 0.05).float().mean().item()

# %% [mistake] squared distance against 3 sigma | expect: squared distance
import torch
from fromscratch.models import gan as G


def ring_quality(points):
    d2 = torch.cdist(points, G.ring_centres()).pow(2)
    return (d2.min(dim=1).values <= 3 * 0.05).float().mean().item()

# %% [mistake] a count instead of a share | expect: a share between 0 and 1
import torch
from fromscratch.models import gan as G


def ring_quality(points):
    d = torch.cdist(points, G.ring_centres())
    return (d.min(dim=1).values <= 3 * 0.05).sum().item()

# %% [mistake] the course's function | expect: an existing implementation
from fromscratch.models.gan import ring_coverage


def ring_quality(points):
    return ring_coverage(points).quality

# %% [mistake] divided by 1000 | expect: divided by 1000
import torch
from fromscratch.models import gan as G


def ring_quality(points):
    d = torch.cdist(points, G.ring_centres())
    return ((d.min(dim=1).values <= 3 * 0.05).sum() / 1000).item()

# %% [mistake] a threshold a little too wide | expect: 37 test points
import torch
from fromscratch.models import gan as G


def ring_quality(points):
    d = torch.cdist(points, G.ring_centres())
    return (d.min(dim=1).values <= 0.1505).float().mean().item()

# %% [mistake] only the covered modes' points | expect: 37 test points
import torch
from fromscratch.models import gan as G


def ring_quality(points):
    d = torch.cdist(points, G.ring_centres())
    dmin, nearest = d.min(dim=1)
    good = dmin <= 3 * 0.05
    share = torch.bincount(nearest[good], minlength=8).float() / len(points)
    return share[share >= 0.25 / 8].sum().item()
