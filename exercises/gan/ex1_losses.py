# ---
# id: gan-losses
# title: The GAN losses from logits
# kind: implement
# points: 3
# ---

# %% [markdown]
# Write the two losses of a GAN from the discriminator's **logits** $l$ (so that
# $D(x) = \sigma(l)$), each averaged over the batch and returned as a 0-dimensional
# tensor:
#
# - `d_loss(real_logits, fake_logits)`: the discriminator's loss,
#   $-\log D(x) - \log(1 - D(G(z)))$, that is
#   $\operatorname{softplus}(-l_\text{real})$ averaged over the real batch plus
#   $\operatorname{softplus}(l_\text{fake})$ averaged over the fake batch;
# - `g_loss(fake_logits)`: the generator's **non-saturating** loss, $-\log D(G(z))$.
#
# Both must stay finite for very confident discriminators (logits of $\pm 200$): use
# `torch.nn.functional.softplus`, not `torch.log(torch.sigmoid(...))`. The check
# compares both with the reference on several batches and refuses the course's
# `discriminator_loss` and `generator_loss` and PyTorch's binary cross-entropy.

# %% [solution]
import torch.nn.functional as F


def d_loss(real_logits, fake_logits):
    ### BEGIN SOLUTION
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    ### END SOLUTION


def g_loss(fake_logits):
    ### BEGIN SOLUTION
    return F.softplus(-fake_logits).mean()
    ### END SOLUTION

# %% [check]
from fromscratch.checks.gan import check_gan_losses

check_gan_losses(d_loss, g_loss)

# %% [mistake] log of the sigmoid | expect: log(sigmoid(l)) overflows
import torch
import torch.nn.functional as F


def d_loss(real_logits, fake_logits):
    return (-torch.log(torch.sigmoid(real_logits)).mean()
            - torch.log(1 - torch.sigmoid(fake_logits)).mean())


def g_loss(fake_logits):
    return F.softplus(-fake_logits).mean()

# %% [mistake] labels swapped | expect: labels are swapped
import torch.nn.functional as F


def d_loss(real_logits, fake_logits):
    return F.softplus(real_logits).mean() + F.softplus(-fake_logits).mean()


def g_loss(fake_logits):
    return F.softplus(-fake_logits).mean()

# %% [mistake] summed instead of averaged | expect: average over the batch
import torch.nn.functional as F


def d_loss(real_logits, fake_logits):
    return F.softplus(-real_logits).sum() + F.softplus(fake_logits).sum()


def g_loss(fake_logits):
    return F.softplus(-fake_logits).sum()

# %% [mistake] the saturating generator loss | expect: the saturating loss
import torch.nn.functional as F


def d_loss(real_logits, fake_logits):
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_loss(fake_logits):
    return -F.softplus(fake_logits).mean()

# %% [mistake] PyTorch's binary cross-entropy | expect: an existing implementation
import torch
import torch.nn.functional as F


def d_loss(real_logits, fake_logits):
    bce = F.binary_cross_entropy_with_logits
    return (bce(real_logits, torch.ones_like(real_logits))
            + bce(fake_logits, torch.zeros_like(fake_logits)))


def g_loss(fake_logits):
    bce = F.binary_cross_entropy_with_logits
    return bce(fake_logits, torch.ones_like(fake_logits))

# %% [mistake] a detached loss | expect: detached from the logits
import torch
import torch.nn.functional as F


def d_loss(real_logits, fake_logits):
    value = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    return torch.tensor(value.item())


def g_loss(fake_logits):
    return F.softplus(-fake_logits).mean()

# %% [mistake] the input changed in place | expect: changed its input tensors
import torch.nn.functional as F


def d_loss(real_logits, fake_logits):
    return F.softplus(real_logits.neg_()).mean() + F.softplus(fake_logits).mean()


def g_loss(fake_logits):
    return F.softplus(-fake_logits).mean()

# %% [mistake] averaged over the first axis only | expect: averaged over the first axis
import torch.nn.functional as F


def d_loss(real_logits, fake_logits):
    return F.softplus(-real_logits).mean(0) + F.softplus(fake_logits).mean(0)


def g_loss(fake_logits):
    return F.softplus(-fake_logits).mean(0)
