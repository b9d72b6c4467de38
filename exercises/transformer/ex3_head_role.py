# ---
# id: transformer-head-role
# title: What does one head do?
# kind: experiment
# points: 2
# ---

# %% [markdown]
# The chapter's two-relation model (`relation_models[0]`: one layer, two heads) names the
# previous token and the first token at every position. Test what one head is for.
# Write `measure_head_role(model, X, Y)`:
# 1. find the head of layer 0 that attends most to the **previous token**: the largest
#    mean attention weight from query `t` to key `t - 1`, over `t = 1 .. T-1`
#    (`model.attention_maps(X)[0]` is `(batch, head, query, key)`);
# 2. remove that head alone (`model(X, head_mask=mask)` with `mask` of shape
#    `(n_layers, n_heads)`, 0 for that head, 1 elsewhere);
# 3. return how much the **previous-token accuracy** falls: the accuracy on `Y[..., 0]`
#    over positions `1 .. T-1` with all heads, minus the same with that head removed.
#
# The outputs have `2 * vocab` logits per position: `model(X).view(*Y.shape, -1)` gives
# `(batch, T, 2, vocab)`. The check runs it on `relation_models[0]`, `X_rel_val`,
# `Y_rel_val`, and then on the same model with its heads renumbered and some labels
# changed, so measure everything; assume nothing. Then try the other head: does the
# previous-token relation care?

# %% [solution]
import torch


def measure_head_role(model, X, Y):
    ### BEGIN SOLUTION
    model.eval()
    with torch.no_grad():
        w = model.attention_maps(X)[0]  # (batch, head, query, key)
        t = torch.arange(1, X.shape[1])
        head = w[:, :, t, t - 1].mean(dim=(0, 2)).argmax().item()
        mask = torch.ones(len(model.blocks), w.shape[1])
        mask[0, head] = 0.0

        def previous_accuracy(head_mask):
            pred = model(X, head_mask=head_mask).view(*Y.shape, -1).argmax(-1)
            return (pred[:, 1:, 0] == Y[:, 1:, 0]).float().mean().item()

        return previous_accuracy(None) - previous_accuracy(mask)
    ### END SOLUTION

# %% [check]
from fromscratch.checks.transformer import check_head_role

check_head_role(measure_head_role, relation_models[0], X_rel_val, Y_rel_val)

# %% [setup]
import torch
from fromscratch.data import two_relations
from fromscratch.models.transformer import TokenTransformer, TransformerConfig
from fromscratch.training import fit

X_rel, Y_rel = two_relations(3000, 12, 16, seed=0)
X_rel_val, Y_rel_val = two_relations(1000, 12, 16, seed=100)
torch.manual_seed(0)
config = TransformerConfig(d_model=64, n_heads=2, n_layers=1, max_len=12)
relation_models = [TokenTransformer(16, 32, config)]
fit(relation_models[0], (X_rel, Y_rel), epochs=20, lr=1e-2, batch_size=128, cosine=True,
    loss_fn=lambda logits, y: torch.nn.functional.cross_entropy(
        logits.reshape(-1, 16), y.reshape(-1)), progress=False)

# %% [mistake] position 0 counted | expect: position 0 is counted
import torch


def measure_head_role(model, X, Y):
    model.eval()
    with torch.no_grad():
        w = model.attention_maps(X)[0]
        t = torch.arange(1, X.shape[1])
        head = w[:, :, t, t - 1].mean(dim=(0, 2)).argmax().item()
        mask = torch.ones(len(model.blocks), w.shape[1])
        mask[0, head] = 0.0

        def previous_accuracy(head_mask):
            pred = model(X, head_mask=head_mask).view(*Y.shape, -1).argmax(-1)
            return (pred[..., 0] == Y[..., 0]).float().mean().item()

        return previous_accuracy(None) - previous_accuracy(mask)

# %% [mistake] removed the first-token head | expect: attends to the first token, not
import torch


def measure_head_role(model, X, Y):
    model.eval()
    with torch.no_grad():
        w = model.attention_maps(X)[0]
        head = w[:, :, 1:, 0].mean(dim=(0, 2)).argmax().item()
        mask = torch.ones(len(model.blocks), w.shape[1])
        mask[0, head] = 0.0

        def previous_accuracy(head_mask):
            pred = model(X, head_mask=head_mask).view(*Y.shape, -1).argmax(-1)
            return (pred[:, 1:, 0] == Y[:, 1:, 0]).float().mean().item()

        return previous_accuracy(None) - previous_accuracy(mask)

# %% [mistake] the first-token relation scored | expect: first-token* accuracy
import torch


def measure_head_role(model, X, Y):
    model.eval()
    with torch.no_grad():
        w = model.attention_maps(X)[0]
        t = torch.arange(1, X.shape[1])
        head = w[:, :, t, t - 1].mean(dim=(0, 2)).argmax().item()
        mask = torch.ones(len(model.blocks), w.shape[1])
        mask[0, head] = 0.0

        def first_accuracy(head_mask):
            pred = model(X, head_mask=head_mask).view(*Y.shape, -1).argmax(-1)
            return (pred[:, 1:, 1] == Y[:, 1:, 1]).float().mean().item()

        return first_accuracy(None) - first_accuracy(mask)

# %% [mistake] always head 0 | expect: with its heads renumbered
import torch


def measure_head_role(model, X, Y):
    model.eval()
    with torch.no_grad():
        def previous_accuracy(head_mask):
            pred = model(X, head_mask=head_mask).view(*Y.shape, -1).argmax(-1)
            return (pred[:, 1:, 0] == Y[:, 1:, 0]).float().mean().item()

        return previous_accuracy(None) - previous_accuracy(torch.tensor([[0.0, 1.0]]))

# %% [mistake] accuracy before assumed to be 1 | expect: measure it, do not assume it
import torch


def measure_head_role(model, X, Y):
    model.eval()
    with torch.no_grad():
        w = model.attention_maps(X)[0]
        t = torch.arange(1, X.shape[1])
        head = w[:, :, t, t - 1].mean(dim=(0, 2)).argmax().item()
        mask = torch.ones(len(model.blocks), w.shape[1])
        mask[0, head] = 0.0
        pred = model(X, head_mask=mask).view(*Y.shape, -1).argmax(-1)
        return 1.0 - (pred[:, 1:, 0] == Y[:, 1:, 0]).float().mean().item()
