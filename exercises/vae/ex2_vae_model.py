# ---
# id: vae-model
# title: A VAE of your own
# kind: model
# points: 3
# ---

# %% [markdown]
# Build a VAE yourself: write `make_vae(latent)` returning an `nn.Module` with
#
# - `encode_distribution(x)`: images `(n, 1, 8, 8)` in [0, 1] to `(mu, logvar)`, each
#   `(n, latent)`;
# - `decode(z)`: codes `(n, latent)` to images `(n, 1, 8, 8)` in [0, 1];
# - `forward(x)`: the reconstruction from the mean code, `decode(mu)`.
#
# The check trains it with a fixed recipe (Adam, learning rate 0.002, 40 epochs,
# reconstruction squared error over $2\sigma^2$ with $\sigma = 0.1$, plus the KL; about
# 3 s) with `latent=8` and requires a test reconstruction RMSE of at most 2.5 grey levels
# **and** an FD of 450 prior samples of at most 50, well below the per-pixel Gaussian of
# the calibration table (40 epochs are too few to beat the full-covariance one). The course's `VAE` and `Autoencoder` classes are refused.

# %% [solution]
import torch.nn as nn


def make_vae(latent):
    ### BEGIN SOLUTION
    class MyVAE(nn.Module):
        def __init__(self, latent, hidden=128):
            super().__init__()
            self.encoder = nn.Sequential(
                nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(),
                nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent))
            self.decoder = nn.Sequential(
                nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                nn.ReLU(), nn.Linear(hidden, 64), nn.Sigmoid())

        def encode_distribution(self, x):
            return self.encoder(x).chunk(2, dim=-1)  # mu, logvar

        def decode(self, z):
            return self.decoder(z).reshape(-1, 1, 8, 8)

        def forward(self, x):
            return self.decode(self.encode_distribution(x)[0])

    return MyVAE(latent)
    ### END SOLUTION

# %% [check]
from fromscratch.checks.vae import check_vae_model

check_vae_model(make_vae)

# %% [mistake] the course's VAE | expect: the course's VAE
from fromscratch.models.vae import VAE, VAEConfig


def make_vae(latent):
    return VAE(VAEConfig(latent=latent))

# %% [mistake] latent of the wrong size | expect: expected a latent of size 8
import torch.nn as nn


class Fixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(),
                                     nn.Linear(128, 4))
        self.decoder = nn.Sequential(nn.Linear(2, 128), nn.ReLU(), nn.Linear(128, 64),
                                     nn.Sigmoid())

    def encode_distribution(self, x):
        return self.encoder(x).chunk(2, dim=-1)

    def decode(self, z):
        return self.decoder(z).reshape(-1, 1, 8, 8)

    def forward(self, x):
        return self.decode(self.encode_distribution(x)[0])


def make_vae(latent):
    return Fixed()

# %% [mistake] decoder without a sigmoid | expect: end the decoder with a sigmoid
import torch.nn as nn


class NoSigmoid(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(),
                                     nn.Linear(128, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, 128), nn.ReLU(), nn.Linear(128, 64))

    def encode_distribution(self, x):
        return self.encoder(x).chunk(2, dim=-1)

    def decode(self, z):
        return self.decoder(z).reshape(-1, 1, 8, 8)

    def forward(self, x):
        return self.decode(self.encode_distribution(x)[0])


def make_vae(latent):
    return NoSigmoid(latent)

# %% [mistake] a linear encoder and decoder | expect: the bar is
import torch.nn as nn


class Linear(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, 64), nn.Sigmoid())

    def encode_distribution(self, x):
        return self.encoder(x).chunk(2, dim=-1)

    def decode(self, z):
        return self.decoder(z).reshape(-1, 1, 8, 8)

    def forward(self, x):
        return self.decode(self.encode_distribution(x)[0])


def make_vae(latent):
    return Linear(latent)
