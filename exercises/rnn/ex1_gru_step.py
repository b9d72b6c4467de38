# ---
# id: rnn-gru-step
# title: One step of a GRU
# kind: implement
# points: 3
# ---

# %% [markdown]
# Write `gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh)`: one step of a GRU for a
# batch, with the weights in PyTorch's layout (each stacks three blocks of `hidden_size`
# rows in the order reset `r`, update `z`, new `n`):
#
# $$r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}),\quad
#   z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz})$$
# $$n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})),\quad
#   h' = (1 - z) \odot n + z \odot h$$
#
# `x` is `(B, input_size)`, `h` is `(B, hidden_size)`; return `h'` of shape `(B, hidden_size)`.
# The check compares with `nn.GRUCell` holding the same weights.

# %% [solution]
import torch


def gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    ### BEGIN SOLUTION
    i_r, i_z, i_n = (x @ weight_ih.T + bias_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ weight_hh.T + bias_hh).chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h
    ### END SOLUTION

# %% [check]
from fromscratch.checks.rnn import check_gru_step

check_gru_step(gru_step)

# %% [mistake] update gate the wrong way round | expect: update gate is the wrong way round
import torch


def gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    i_r, i_z, i_n = (x @ weight_ih.T + bias_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ weight_hh.T + bias_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return z * n + (1 - z) * h

# %% [mistake] reset applied before the matrix multiply | expect: PyTorch applies r after it
import torch


def gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    H = h.shape[1]
    i_r, i_z, i_n = (x @ weight_ih.T + bias_ih).chunk(3, dim=-1)
    h_r, h_z, _ = (h @ weight_hh.T + bias_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + (r * h) @ weight_hh[2 * H:].T + bias_hh[2 * H:])
    return (1 - z) * n + z * h

# %% [mistake] gates in the order z, r, n | expect: wrong order
import torch


def gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    i_z, i_r, i_n = (x @ weight_ih.T + bias_ih).chunk(3, dim=-1)
    h_z, h_r, h_n = (h @ weight_hh.T + bias_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h
