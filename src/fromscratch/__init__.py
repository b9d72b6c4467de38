"""Helper package of the course *AI model types, built from scratch*.

The folders mirror the course:

- ``fromscratch.data``: offline data (digits, a text corpus, synthetic tasks);
- ``fromscratch.training``: seeding, device choice, a small training loop, evaluation;
- ``fromscratch.plotting``: loss curves, image grids, heatmaps;
- ``fromscratch.models``: one module per model family (``cnn``, ``rnn``, ...);
- ``fromscratch.generative``: the sample-quality measures the generative chapters share
  (a Frechet distance in a digits classifier's features, class entropy, copy detection);
- ``fromscratch.checks``: the self-checks that give learners specific feedback;
- ``fromscratch.exercises``: the exercises (prompts, stubs, reference solutions).
"""

from .config import device, scale, seed_everything
from .hints import install_restart_hint

install_restart_hint()  # in a notebook: a NameError after a restart says what to run

__version__ = "0.1.0"
__all__ = ["device", "scale", "seed_everything", "__version__"]
