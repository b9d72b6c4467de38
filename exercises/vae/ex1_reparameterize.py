# ---
# id: vae-reparameterize
# title: The reparameterized sample and the KL term
# kind: implement
# points: 3
# ---

# %% [markdown]
# Write the two pieces of the VAE's loss that involve its latent Gaussian
# $q(z \mid x) = \mathcal{N}(\mu, \operatorname{diag}\sigma^2)$, given as `mu` and `logvar`
# $= \log \sigma^2$, both of shape `(n, latent)`:
#
# - `sample_z(mu, logvar, eps)`: the reparameterized sample $z = \mu + \sigma \odot
#   \varepsilon$, using the given noise `eps` (same shape);
# - `kl_term(mu, logvar)`: $\mathrm{KL}(q \,\|\, \mathcal{N}(0, I)) =
#   \tfrac12 \sum_j (\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2)$, one number per example,
#   shape `(n,)`.
#
# The check compares both with the closed forms on several inputs, and refuses the
# course's `reparameterize` and `kl_divergence`.

# %% [solution]
import torch


def sample_z(mu, logvar, eps):
    ### BEGIN SOLUTION
    return mu + torch.exp(0.5 * logvar) * eps
    ### END SOLUTION


def kl_term(mu, logvar):
    ### BEGIN SOLUTION
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=-1)
    ### END SOLUTION

# %% [check]
from fromscratch.checks.vae import check_reparameterization

check_reparameterization(sample_z, kl_term)

# %% [mistake] variance instead of standard deviation | expect: exp(logvar / 2)
import torch


def sample_z(mu, logvar, eps):
    return mu + torch.exp(logvar) * eps


def kl_term(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=-1)

# %% [mistake] sampling without the given noise | expect: use the eps you are given
import torch


def sample_z(mu, logvar, eps):
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def kl_term(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=-1)

# %% [mistake] KL with the wrong sign | expect: sign is flipped
import torch


def sample_z(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps


def kl_term(mu, logvar):
    return 0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)

# %% [mistake] KL without the 0.5 | expect: factor 0.5 is missing
import torch


def sample_z(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps


def kl_term(mu, logvar):
    return (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=-1)

# %% [mistake] KL not summed | expect: one KL per latent dimension
import torch


def sample_z(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps


def kl_term(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)

# %% [mistake] the course's functions | expect: an existing implementation
from fromscratch.models.vae import kl_divergence, reparameterize


def sample_z(mu, logvar, eps):
    return reparameterize(mu, logvar, eps=eps)


def kl_term(mu, logvar):
    return kl_divergence(mu, logvar)
