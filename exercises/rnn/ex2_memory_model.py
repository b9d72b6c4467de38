# ---
# id: rnn-memory-model
# title: Make a GRU remember
# kind: model
# points: 3
# ---

# %% [markdown]
# In the chapter the plain RNN stays close to chance on the remember-first task at length 50,
# and the LSTM solves it once its forget gate starts open. Do the same for a GRU: write
# `make_memory_model(vocab_size, n_classes)` returning a **GRU**-based classifier that reads
# the tokens left to right and reaches **90%** validation accuracy at length 50 after 6
# epochs (the check trains it, about 5 s). `SequenceClassifier("gru", ...)` with
# `RNNConfig(embed=8, hidden=32)` is a good start, but set the gate's bias yourself: the
# check refuses the course's `init_keep_gate` (and so `keep_bias=`). A GRU with PyTorch's
# default initialisation stays close to chance here. Which of its gates decides how much of
# the old state is *kept*, and which block of `bias_ih` is it?

# %% [solution]
import torch
from fromscratch.models.rnn import RNNConfig, SequenceClassifier


def make_memory_model(vocab_size, n_classes):
    ### BEGIN SOLUTION
    model = SequenceClassifier("gru", vocab_size, n_classes, RNNConfig(embed=8, hidden=32))
    H = 32
    with torch.no_grad():  # the update gate z is block 1 of (r, z, n); z near 1 keeps h
        model.rnn.cell.bias_ih[H : 2 * H].fill_(3.0)
        model.rnn.cell.bias_hh[H : 2 * H].zero_()
    return model
    ### END SOLUTION

# %% [check]
from fromscratch.checks.rnn import check_memory_model

check_memory_model(make_memory_model)

# %% [mistake] a plain RNN | expect: asks for a GRU, and the model holds none (it has RNNCell)
from fromscratch.models.rnn import RNNConfig, SequenceClassifier


def make_memory_model(vocab_size, n_classes):
    return SequenceClassifier("rnn", vocab_size, n_classes, RNNConfig(embed=8, hidden=32))

# %% [mistake] a plain RNN reading the tokens reversed | expect: asks for a GRU
from fromscratch.models.rnn import RNNConfig, SequenceClassifier


class Reversed(SequenceClassifier):
    def forward(self, tokens):
        return super().forward(tokens.flip(1))


def make_memory_model(vocab_size, n_classes):
    return Reversed("rnn", vocab_size, n_classes, RNNConfig(embed=8, hidden=32))

# %% [mistake] a GRU reading the tokens reversed | expect: reads the sequence backwards
from fromscratch.models.rnn import RNNConfig, SequenceClassifier


class Reversed(SequenceClassifier):
    def forward(self, tokens):
        return super().forward(tokens.flip(1))


def make_memory_model(vocab_size, n_classes):
    return Reversed("gru", vocab_size, n_classes, RNNConfig(embed=8, hidden=32))

# %% [mistake] the first token passed around the GRU | expect: path around the GRU
import torch
from fromscratch.models.rnn import RNNConfig, SequenceClassifier


class Shortcut(SequenceClassifier):
    def forward(self, tokens):
        hs, _ = self.rnn(self.embed(tokens))
        return self.out(hs[:, -1]) + 10 * torch.eye(4)[tokens[:, 0].clamp(max=3)]


def make_memory_model(vocab_size, n_classes):
    return Shortcut("gru", vocab_size, n_classes, RNNConfig(embed=8, hidden=32))

# %% [mistake] a GRU with default initialisation | expect: update gate z is half open
from fromscratch.models.rnn import RNNConfig, SequenceClassifier


def make_memory_model(vocab_size, n_classes):
    return SequenceClassifier("gru", vocab_size, n_classes, RNNConfig(embed=8, hidden=32))

# %% [mistake] the course's keep_bias | expect: calls `fromscratch.models.rnn.init_keep_gate`
from fromscratch.models.rnn import RNNConfig, SequenceClassifier


def make_memory_model(vocab_size, n_classes):
    return SequenceClassifier("gru", vocab_size, n_classes, RNNConfig(embed=8, hidden=32),
                              keep_bias=3.0)

# %% [mistake] the course's init_keep_gate | expect: calls `fromscratch.models.rnn.init_keep_gate`
from fromscratch.models.rnn import RNNConfig, SequenceClassifier, init_keep_gate


def make_memory_model(vocab_size, n_classes):
    model = SequenceClassifier("gru", vocab_size, n_classes, RNNConfig(embed=8, hidden=32))
    init_keep_gate(model.rnn.cell, 3.0)
    return model

# %% [mistake] one output per time step | expect: expected: an output of shape (3, 4)
import torch.nn as nn
from fromscratch.models.rnn import Recurrent, make_cell


class PerStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.out = nn.Embedding(8, 8), nn.Linear(32, 4)
        self.rnn = Recurrent(make_cell("gru", 8, 32))

    def forward(self, tokens):
        return self.out(self.rnn(self.embed(tokens))[0])


def make_memory_model(vocab_size, n_classes):
    return PerStep()
