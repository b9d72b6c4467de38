# ---
# id: vae-rmse
# title: Reconstruction error in grey levels
# kind: experiment
# points: 2
# ---

# %% [markdown]
# The chapter's bar for reconstructions is an RMSE in the digits' own grey levels (0 to
# 16), while the models work on images scaled to [0, 1]. Write
# `measure_rmse(model, X)`: the root mean squared error, in grey levels, between the
# images `X` (`(n, 1, 8, 8)` in [0, 1]) and the model's reconstructions `model(X)` (the
# VAE reconstructs from its mean code), over all pixels of all images. The check runs it
# on the chapter's `vae` and the test images `split.X_test`. How does your number compare
# with the PCA baseline of the same dimension?

# %% [solution]
import math

import torch


def measure_rmse(model, X):
    ### BEGIN SOLUTION
    model.eval()
    with torch.no_grad():
        err = (model(X) - X) * 16  # grey levels
    return math.sqrt(err.pow(2).mean().item())
    ### END SOLUTION

# %% [check]
from fromscratch.checks.vae import check_reconstruction_rmse

check_reconstruction_rmse(measure_rmse, vae, split.X_test)

# %% [setup]
import torch
from fromscratch.data import load_digits_split
from fromscratch.models.vae import VAE, VAEConfig, train_autoencoder

split = load_digits_split()
torch.manual_seed(0)
vae = VAE(VAEConfig(latent=8, hidden=64))
train_autoencoder(vae, split.X_train, epochs=5)

# %% [mistake] on the [0, 1] scale | expect: multiply the errors by 16
import math

import torch


def measure_rmse(model, X):
    with torch.no_grad():
        return math.sqrt((model(X) - X).pow(2).mean().item())

# %% [mistake] mean squared error | expect: RMSE is its square root
import torch


def measure_rmse(model, X):
    with torch.no_grad():
        return ((model(X) - X) * 16).pow(2).mean().item()

# %% [mistake] reconstructing from a sampled code | expect: measurement is random
import math

import torch


def measure_rmse(model, X):
    with torch.no_grad():
        mu, logvar = model.encode_distribution(X)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return math.sqrt(((model.decode(z) - X) * 16).pow(2).mean().item())

# %% [mistake] mean of per-image RMSEs | expect: mean of per-image RMSEs
import torch


def measure_rmse(model, X):
    with torch.no_grad():
        err = ((model(X) - X) * 16).flatten(1)
        return err.pow(2).mean(dim=1).sqrt().mean().item()

# %% [mistake] the course's function | expect: an existing implementation
from fromscratch.models.vae import reconstruction_rmse


def measure_rmse(model, X):
    return reconstruction_rmse(model, X)
