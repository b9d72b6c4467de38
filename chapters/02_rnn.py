# %% [markdown]
# # Recurrent networks: RNN, LSTM, GRU
#
# A recurrent network reads a sequence **one step at a time, left to right**, and carries a
# {term}`hidden state` from each step to the next: a fixed-size summary of everything it has
# read so far {cite:p}`elman1990finding`. The same weights are used at every step, so one
# small network handles sequences of any length.
#
# The catch is memory. Training sends gradients backwards through every step, and in a
# plain RNN they shrink exponentially with distance {cite:p}`bengio1994learning`. The LSTM
# {cite:p}`hochreiter1997long` and the GRU {cite:p}`cho2014learning` add {term}`gates <gate>`
# that let information, and gradients, pass many steps unchanged.
#
# ```{admonition} Learning objectives
# :class: tip
# After this chapter you can
# - write the recurrence of a plain RNN and run it step by step;
# - build LSTM and GRU cells from their gates, equal to PyTorch's `nn.LSTM` and `nn.GRU`;
# - measure {term}`vanishing gradients <vanishing gradient>` as gradient norm against distance;
# - show a memory task that a plain RNN fails and an LSTM solves, and explain why;
# - train a character-level language model and sample text from it.
# ```
#
# **Prerequisites**: [the CNN chapter](01_cnn.ipynb) (training loop, course package);
# matrix multiplication, sigmoid and tanh; backpropagation.
#
# | Key idea | Experiment that shows it |
# |---|---|
# | The hidden state is memory; processing is left to right | [The recurrence by hand](recurrence) |
# | Gates make LSTM and GRU | [Cells equal to PyTorch's](gated-cells) |
# | Vanishing gradients | [Gradient norm against distance](vanishing) |
# | Long-range memory needs gates | [Remember the first token](memory-task) |
# | Sequences of symbols can be generated | [A character-level model](char-model) |

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

from fromscratch import device, seed_everything
from fromscratch.data import CharVocab, char_windows, load_text, remember_first
from fromscratch.models import rnn
from fromscratch.plotting import heatmap, plot_history, plot_lines, show_source
from fromscratch.report import record
from fromscratch.training import count_parameters, fit

seed_everything(0)
print("device:", device())

# %% [markdown]
# (recurrence)=
# ## The recurrence by hand
#
# At step $t$ a plain RNN mixes the new input $x_t$ with the previous hidden state:
#
# $$h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \qquad h_0 = 0.$$
#
# Here it is with explicit tensors and a Python loop, on a batch of 2 sequences of 5 steps
# with 3 features and a hidden state of size 4:

# %%
torch.manual_seed(0)
I, H, T = 3, 4, 5
W_ih, W_hh = torch.randn(H, I) * 0.5, torch.randn(H, H) * 0.5
b_ih, b_hh = torch.zeros(H), torch.zeros(H)
xs = torch.randn(2, T, I)

h = torch.zeros(2, H)
states = []
for t in range(T):
    h = torch.tanh(xs[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)  # (2, H)
    states.append(h)
states = torch.stack(states, dim=1)  # (2, T, H)
print("hidden states:", tuple(states.shape))

# %% [markdown]
# The same weights in PyTorch's `nn.RNN` give the same states:

# %%
torch_rnn = nn.RNN(I, H, batch_first=True)
with torch.no_grad():
    torch_rnn.weight_ih_l0.copy_(W_ih), torch_rnn.weight_hh_l0.copy_(W_hh)
    torch_rnn.bias_ih_l0.copy_(b_ih), torch_rnn.bias_hh_l0.copy_(b_hh)
    ref, _ = torch_rnn(xs)
print("max difference to nn.RNN:", (states - ref).abs().max().item())
assert torch.allclose(states, ref, atol=1e-6)

# %% [markdown]
# Two properties follow from the loop, and we test both. **Left to right**: changing the
# input at step 3 cannot change the states before step 3. **Memory**: changing the input
# at step 0 changes every later state, because $h_0$'s influence is carried forward.

# %%
def run(inputs):
    out = rnn.Recurrent(rnn.copy_from_torch(rnn.RNNCell(I, H), torch_rnn))
    with torch.no_grad():
        return out(inputs)[0]

late, early = xs.clone(), xs.clone()
late[:, 3] += 1.0
early[:, 0] += 1.0
change_late = (run(late) - run(xs)).abs().amax(dim=(0, 2))
change_early = (run(early) - run(xs)).abs().amax(dim=(0, 2))
print("change per step after editing step 3:", [f"{v:.3f}" for v in change_late.tolist()])
print("change per step after editing step 0:", [f"{v:.3f}" for v in change_early.tolist()])
assert change_late[:3].max() == 0 and change_late[3:].min() > 0
assert change_early.min() > 0

# %% [markdown]
# The edit at step 0 still moves the state at step 4, but how much it moves it depends on
# the later inputs, not only on the edit: the old input is mixed, step by step, with
# everything read since. Over many steps this mixing washes the early input out, as the
# gradient measurements below show.
#
# (gated-cells)=
# ## Gated cells: LSTM and GRU
#
# An LSTM keeps a second state, the *cell* $c_t$, updated by addition rather than by
# squashing through a matrix and a tanh. Four gates, all computed from $x_t$ and $h_{t-1}$,
# decide what happens: the forget gate $f$ how much of $c_{t-1}$ to keep, the input gate
# $i$ how much of the candidate $g$ to write, the output gate $o$ how much of the cell to
# show:
#
# $$c_t = f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t).$$
#
# Our cell keeps PyTorch's weight layout (the four gates' weights stacked in one matrix),
# so that one matrix multiply computes all gates at once:

# %%
show_source(rnn.LSTMCell.forward)

# %% [markdown]
# Copy the weights of PyTorch's `nn.LSTM` and `nn.GRU` into our cells and compare the
# outputs on random sequences of 20 steps:

# %%
x_seq = torch.randn(3, 20, 6)
for kind, torch_cls in [("rnn", nn.RNN), ("lstm", nn.LSTM), ("gru", nn.GRU)]:
    ref_module = torch_cls(6, 8, batch_first=True)
    ours = rnn.Recurrent(rnn.copy_from_torch(rnn.make_cell(kind, 6, 8), ref_module))
    with torch.no_grad():
        out_ours, _ = ours(x_seq)
        out_ref, _ = ref_module(x_seq)
    diff = (out_ours - out_ref).abs().max().item()
    print(f"{kind:>4}: {count_parameters(ours):>4} parameters, max difference {diff:.1e}")
    assert torch.allclose(out_ours, out_ref, atol=1e-5)

# %% [markdown]
# The GRU merges the LSTM's cell and hidden state and uses two gates: an update gate $z$
# that interpolates between keeping the old state and taking a new candidate, and a reset
# gate $r$ that decides how much of the old state the candidate sees. You will write its
# step yourself in Exercise 1. Gates cost parameters: an LSTM has 4 times the weights of
# a plain RNN of the same size, a GRU 3 times.
#
# (vanishing)=
# ## Vanishing gradients: gradient norm against distance
#
# During training, the loss at the last step must send a gradient back to the step where
# the important input was. We measure $\lVert \partial L / \partial h_t \rVert$ for every
# step $t$ of a 50-step sequence, for a plain RNN and an LSTM, as they are initialised
# for the memory task below. The LSTM's forget-gate bias starts at 3
# ($\sigma(3) \approx 0.95$: keep almost everything), a standard trick
# {cite:p}`jozefowicz2015empirical`.

# %%
LENGTH = 50
X_task, y_task = remember_first(2000, LENGTH, seed=0)
X_val_task, y_val_task = remember_first(500, LENGTH, seed=1)
print("one sequence:", X_task[0, :12].tolist(), "... target:", y_task[0].item())

def memory_model(kind, keep_bias=None):
    torch.manual_seed(0)
    return rnn.SequenceClassifier(kind, 8, 4, rnn.RNNConfig(embed=8, hidden=32), keep_bias=keep_bias)

def grad_profile(model):
    return rnn.gradient_norm_vs_distance(model.rnn.cell, model.embed(X_task[:64]))

models = {"RNN": memory_model("rnn"), "LSTM": memory_model("lstm", keep_bias=3.0)}
before = {name: grad_profile(m) for name, m in models.items()}
distance = torch.arange(LENGTH)
plot_lines(distance, before, xlabel="distance from the loss (steps)",
           ylabel="gradient norm", title="at initialisation", logy=True)

# %%
for name, g in before.items():
    print(f"{name:>4}: gradient norm at distance 0: {g[0]:.2e}, at distance 49: {g[-1]:.2e}")
ratio = (before["LSTM"][-1] / before["RNN"][-1]).item()
print(f"at distance 49 the LSTM's gradient is {ratio:.1e} times the RNN's")
assert ratio > 1e3

# %% [markdown]
# The plain RNN's gradient falls by many orders of magnitude over 50 steps: each step
# multiplies it by $W_{hh}^\top$ and by tanh's derivative (at most 1), and those
# products shrink. Through the LSTM's cell state it is multiplied by the forget gate
# instead, close to 1, so it survives.
#
# (memory-task)=
# ## A long-range memory task
#
# Each sequence starts with one of 4 symbols, followed by 49 random noise tokens. After
# the last token the model must name the first symbol. Guessing gives 25%. We train a
# plain RNN, an LSTM with the forget-gate bias at 3, and, to show that the initialisation
# matters, an LSTM with PyTorch's default initialisation, all with the same recipe
# (4 epochs of Adam, gradients clipped at norm 1).

# %%
models["LSTM, default init"] = memory_model("lstm")
histories = {}
for name, m in models.items():
    histories[name] = fit(m, (X_task, y_task), val=(X_val_task, y_val_task), epochs=4, lr=3e-3,
                          batch_size=64, clip_grad=1.0, seed=0, desc=name)
    print(f"{name:>18}: validation accuracy per epoch",
          [round(a, 3) for a in histories[name].val_metric])
plot_history(histories, title="remember the first of 50 tokens")

# %%
acc = {name: h.final_val for name, h in histories.items()}
assert acc["RNN"] < 0.4, acc
assert acc["LSTM"] >= 0.95, acc
print(f"plain RNN: {acc['RNN']:.1%} (chance 25%); LSTM: {acc['LSTM']:.1%}")

# %% [markdown]
# The plain RNN stays close to chance: the gradient from the answer barely reaches the
# first token, so it does not learn to store it within this budget. The LSTM with its forget gate open solves the
# task within two epochs. The LSTM with default gates (forget gate $\sigma(0)=0.5$ at the
# start) is an LSTM too, yet it stalls within this budget: the architecture makes
# long memory *possible*; the initialisation makes it *learnable quickly*.
#
# After training, the LSTM's gradient reaches back even better:

# %%
after = {name: grad_profile(models[name]) for name in ("RNN", "LSTM")}
plot_lines(distance, after, xlabel="distance from the loss (steps)", ylabel="gradient norm",
           title="after training", logy=True)

# %% [markdown]
# What does the memory look like? Below, the hidden state of the trained LSTM over one
# sequence, one row per hidden unit. The units move during the first steps and then
# settle to values that they hold through the remaining noise tokens: noise barely
# disturbs them. That the final state still encodes the first symbol, we can test
# directly: its average over sequences that start with the same symbol differs by symbol.

# %%
with torch.no_grad():
    hs, _ = models["LSTM"].rnn(models["LSTM"].embed(X_val_task))  # (500, 50, 32)
heatmap(hs[0].T[:16], title=f"LSTM hidden units 0-15 over time (first symbol {y_val_task[0].item()})",
        cmap="RdBu_r", xlabel="time step", ylabel="hidden unit")

# %% [markdown]
# **Step through it yourself**: choose a sequence and a time step (or press play) to watch
# the LSTM's hidden state settle and then hold. The website shows steps 0, 25 and 49.

# %% tags=["nbval-ignore-output"]
from fromscratch.explore import hidden_state_explorer

hidden_state_explorer(models["LSTM"], X_val_task[:8], max_units=16,
                      title="trained LSTM, memory task")

# %%
final_by_symbol = torch.stack([hs[y_val_task == s, -1].mean(0) for s in range(4)])  # (4, 32)
heatmap(final_by_symbol[:, :16], xlabels=range(16), ylabels=[f"symbol {s}" for s in range(4)],
        title="mean final hidden state (units 0-15) by first symbol", cmap="RdBu_r")
spread = torch.cdist(final_by_symbol, final_by_symbol)
within = torch.stack([(hs[y_val_task == s, -1] - final_by_symbol[s]).norm(dim=1).mean()
                      for s in range(4)])
between = spread[~torch.eye(4, dtype=bool)].min()
print(f"smallest distance between two symbols' mean final states: {between:.2f}; "
      f"mean distance of a state to its own symbol's mean: {within.mean():.2f}")
assert between > 2 * within.mean()

# %% [markdown]
# (char-model)=
# ## A character-level language model
#
# Recurrent networks can also *generate*. A character model reads text and predicts the
# next character at every step {cite:p}`karpathy2015unreasonable`. Our text is the help
# pages that ship inside Python itself (`pydoc_data.topics`; the course package holds a fixed
# snapshot, so every Python version sees the same text), so nothing is downloaded. We
# train an LSTM on 54,000 characters and keep the last 6,000 for validation.

# %%
text = load_text(max_chars=60_000)
vocab = CharVocab.from_text(text)
ids = vocab.encode(text)
X_chars, Y_chars = char_windows(ids[:-6_000], block=64)
X_val, Y_val = char_windows(ids[-6_000:], block=64)
print(f"{len(text):,} characters, vocabulary of {len(vocab)}, "
      f"{len(X_chars)} training windows of 64")
print(repr(text[1000:1200]))

# %% [markdown]
# We judge the model by its validation {term}`perplexity`: the exponential of its mean
# cross-entropy per character, the number of equally likely characters it is, on average,
# as unsure as. A model that guesses uniformly scores the vocabulary size, 88. (Exercise 3
# asks you to compute it yourself.)

# %%
torch.manual_seed(0)
config = rnn.RNNConfig.default()  # FROMSCRATCH_SCALE=large: a wider model for a GPU
print(config)
char_model = rnn.CharModel("lstm", len(vocab), config)
hist_char = fit(char_model, (X_chars, Y_chars), val=(X_val, Y_val), metric=rnn.perplexity,
                epochs=6, lr=5e-3, batch_size=32, clip_grad=1.0, seed=0, desc="char LSTM")
char_ppl = hist_char.final_val
print("validation perplexity per epoch:", [round(p, 2) for p in hist_char.val_metric])
assert char_ppl < 12, char_ppl
print(f"bar passed: perplexity {char_ppl:.2f} < 12 (a uniform guess scores {len(vocab)})")

# %% [markdown]
# Sampling feeds each generated character back in. The temperature divides the logits
# before the softmax: low temperatures pick the likeliest characters (safe, repetitive),
# high ones take more risks.

# %%
for temperature in (0.5, 1.0):
    g = torch.Generator().manual_seed(0)
    sample = rnn.generate(char_model, vocab.encode("The "), 240, temperature=temperature, generator=g)
    print(f"--- temperature {temperature}\nThe {vocab.decode(sample)}\n")

# %% [markdown]
# The model has learned spelling-like patterns, common words, punctuation and the layout
# of the help pages from 54,000 characters in seconds. It has no grasp of meaning, and
# its memory is a single vector; the Transformer chapter replaces the recurrence with
# attention, which looks back at every earlier position directly.
#
# ## Results

# %% tags=["nbval-ignore-output"]
record("rnn", model="LSTM (memory task) + char LSTM", parameters=count_parameters(char_model),
       memory_accuracy_lstm=round(acc["LSTM"], 4), memory_accuracy_rnn=round(acc["RNN"], 4),
       char_perplexity=round(char_ppl, 3),
       train_seconds=round(sum(h.seconds for h in histories.values()) + hist_char.seconds, 1),
       compute_growth="linear in length, sequential")

# %% [markdown]
# ## Summary
#
# - A recurrent network applies one cell at every step and carries a hidden state; it
#   reads left to right, and an early input influences every later state.
# - LSTM and GRU cells are built from sigmoid gates and a tanh candidate; ours equal
#   PyTorch's to float32 precision.
# - A plain RNN's gradient vanishes exponentially with distance; the LSTM's additive cell
#   path keeps it alive.
# - On a 50-step memory task, the plain RNN stays close to chance and the LSTM (forget
#   gate initially open) solves it.
# - The same machinery, trained on characters, generates text one character at a time.
#
# ## Further reading
#
# - {cite:t}`elman1990finding`: simple recurrent networks and what their states encode.
# - {cite:t}`bengio1994learning`: why gradient descent struggles with long-term dependencies.
# - {cite:t}`hochreiter1997long`: the LSTM.
# - {cite:t}`cho2014learning`: the GRU.
# - {cite:t}`jozefowicz2015empirical`: a large comparison of recurrent cells; the forget-gate bias.
#
# ## Exercises
#
# Each exercise has a check below it. Run your cell, then the check: it tells you which
# input failed, what was expected and what your code returned.

# %%
from fromscratch.exercises import show_solution

# %%
# EXERCISES: rnn
