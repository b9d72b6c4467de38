# ---
# id: llm-dpo-loss
# title: The DPO loss
# kind: implement
# points: 2
# ---

# %% [markdown]
# Write `dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)`. Each
# of the first four arguments is a 1-D tensor with one number per preference pair: the
# summed log-probability of the preferred (`chosen`) or dispreferred (`rejected`)
# completion under the model being trained (`policy`) or under the frozen reference
# model (`ref`). Return the mean over pairs of
#
# $$-\log \sigma\big(\beta\,[(\log\pi(w) - \log\pi_\text{ref}(w)) - (\log\pi(l) - \log\pi_\text{ref}(l))]\big).$$
#
# Use a numerically stable log-sigmoid: the check includes pairs whose margins are large.
# Calling the chapter's `dpo_loss` is refused.

# %% [solution]
import torch.nn.functional as F


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    ### BEGIN SOLUTION
    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    return -F.logsigmoid(beta * margin).mean()
    ### END SOLUTION

# %% [check]
from fromscratch.checks.llm import check_dpo_loss

check_dpo_loss(dpo_loss)

# %% [mistake] chosen and rejected swapped | expect: chosen and rejected are swapped
import torch.nn.functional as F


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    margin = (policy_rejected - ref_rejected) - (policy_chosen - ref_chosen)
    return -F.logsigmoid(beta * margin).mean()

# %% [mistake] no reference model | expect: the reference model is missing
import torch.nn.functional as F


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    return -F.logsigmoid(beta * (policy_chosen - policy_rejected)).mean()

# %% [mistake] summed over pairs | expect: take the mean
import torch.nn.functional as F


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    return -F.logsigmoid(beta * margin).sum()

# %% [mistake] unstable log of sigmoid | expect: case 4 of
import torch


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    return -torch.log(torch.sigmoid(beta * margin)).mean()

# %% [mistake] calls the chapter's loss | expect: an existing implementation
from fromscratch.models.preference import dpo_loss as chapter_loss


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    return chapter_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)

# %% [mistake] margin computed without gradients | expect: the loss cannot be trained
import torch
import torch.nn.functional as F


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    with torch.no_grad():  # "the reference is frozen" - but so is the policy now
        margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    return -F.logsigmoid(beta * margin).mean()
