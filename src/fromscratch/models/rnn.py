"""Recurrent networks from scratch: plain RNN, LSTM and GRU cells (chapter 2).

References: Elman 1990, "Finding structure in time"; Hochreiter & Schmidhuber 1997,
"Long short-term memory"; Cho et al. 2014 (GRU); Bengio et al. 1994, "Learning long-term
dependencies with gradient descent is difficult".

Every cell stores its weights in PyTorch's layout (``weight_ih``: the input-to-hidden
weights of all gates stacked, ``weight_hh``: hidden-to-hidden, two biases), so weights
copy one-to-one from ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` and the outputs can be compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

from ..config import pick


class _Cell(nn.Module):
    n_gates = 1  # how many blocks of size hidden_size the weights stack

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        G, H = self.n_gates, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(G * H, H))
        self.bias_ih = nn.Parameter(torch.empty(G * H))
        self.bias_hh = nn.Parameter(torch.empty(G * H))
        bound = 1 / math.sqrt(H)  # PyTorch's default initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def init_state(self, batch: int, device=None):
        return self.weight_hh.new_zeros(batch, self.hidden_size, device=device)

    @staticmethod
    def hidden(state):
        """The part of the state that is the cell's output (``h``)."""
        return state


class RNNCell(_Cell):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)"""

    def forward(self, x, h):  # x: (B, I), h: (B, H)
        return torch.tanh(x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh)


class LSTMCell(_Cell):
    """LSTM cell; gates stacked in PyTorch's order input, forget, cell (g), output.

    i, f, o = sigmoid(...), g = tanh(...);  c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)
    """

    n_gates = 4

    def init_state(self, batch: int, device=None):
        z = self.weight_hh.new_zeros(batch, self.hidden_size, device=device)
        return (z, z.clone())

    @staticmethod
    def hidden(state):
        return state[0]

    def forward(self, x, state):  # x: (B, I), state: ((B, H), (B, H))
        h, c = state
        gates = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
        i, f, g, o = gates.chunk(4, dim=-1)  # each (B, H)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g  # the cell state: an additive path through time
        h = o * torch.tanh(c)
        return (h, c)


class GRUCell(_Cell):
    """GRU cell; gates stacked in PyTorch's order reset (r), update (z), new (n).

    r, z = sigmoid(...);  n = tanh(W_in x + b_in + r * (W_hn h + b_hn));
    h_t = (1 - z) * n + z * h_{t-1}
    """

    n_gates = 3

    def forward(self, x, h):
        gi = x @ self.weight_ih.T + self.bias_ih  # (B, 3H)
        gh = h @ self.weight_hh.T + self.bias_hh  # (B, 3H)
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h


CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


def make_cell(kind: str, input_size: int, hidden_size: int) -> _Cell:
    if kind not in CELLS:
        raise ValueError(f"unknown cell kind {kind!r}; choose one of {sorted(CELLS)}")
    return CELLS[kind](input_size, hidden_size)


class Recurrent(nn.Module):
    """Runs a cell left to right over a batch of sequences ``(B, T, I)``.

    Returns every hidden state ``(B, T, H)`` and the final state.
    """

    def __init__(self, cell: _Cell):
        super().__init__()
        self.cell = cell

    def forward(self, x: torch.Tensor, state=None):
        if x.dim() != 3:
            raise ValueError(f"expected (batch, time, features), got shape {tuple(x.shape)}")
        B, T, _ = x.shape
        if T == 0:
            raise ValueError("the sequences are empty (time length 0): nothing to run over")
        state = self.cell.init_state(B, x.device) if state is None else state
        outputs = []
        for t in range(T):  # one step at a time: the state carries the past
            state = self.cell(x[:, t], state)
            outputs.append(self.cell.hidden(state))
        return torch.stack(outputs, dim=1), state


@torch.no_grad()
def copy_from_torch(cell: _Cell, module: nn.Module) -> _Cell:
    """Copy the weights of ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (one layer) or of
    ``nn.RNNCell``/``nn.LSTMCell``/``nn.GRUCell`` into our cell of the same kind."""
    suffix = "_l0" if hasattr(module, "weight_ih_l0") else ""
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        src = getattr(module, name + suffix, None)
        dst = getattr(cell, name)
        if src is None or src.shape != dst.shape:
            got = None if src is None else tuple(src.shape)
            raise ValueError(
                f"cannot copy {name}: {type(module).__name__} has {got}, "
                f"{type(cell).__name__} needs {tuple(dst.shape)}"
            )
        dst.copy_(src)
    return cell


@dataclass
class RNNConfig:
    """Sizes of the chapter's recurrent models. ``default()`` follows ``FROMSCRATCH_SCALE``."""

    embed: int = 32  # size of the token embedding
    hidden: int = 128  # size of the hidden state
    dropout: float = 0.0  # dropout on the embeddings and on the hidden states (training only)

    @classmethod
    def default(cls) -> RNNConfig:
        """The character model's sizes: small for a CPU, wider with FROMSCRATCH_SCALE=large."""
        return pick(cls(dropout=0.1), cls(embed=64, hidden=512, dropout=0.2))


KEEP_GATE_BLOCK = 1  # the keep gate is block 1 in both: LSTM (i, f, g, o), GRU (r, z, n)


def init_keep_gate(cell: _Cell, value: float) -> _Cell:
    """Set the bias of the gate that keeps the old state to ``value``.

    That gate is the LSTM's forget gate f and the GRU's update gate z; in PyTorch's layout
    both are block 1 of the stacked gates. ``bias_ih`` of that block gets ``value`` and
    ``bias_hh`` of it 0, so the gate starts at about sigmoid(value) (3 gives 0.95: the cell
    starts out keeping almost all of its state).
    """
    if not isinstance(cell, (LSTMCell, GRUCell)):
        raise ValueError(f"{type(cell).__name__} has no gate to bias: this needs an LSTM or "
                         "GRU cell")
    H = cell.hidden_size
    block = slice(KEEP_GATE_BLOCK * H, (KEEP_GATE_BLOCK + 1) * H)
    with torch.no_grad():
        cell.bias_ih[block].fill_(value)
        cell.bias_hh[block].zero_()
    return cell


class SequenceClassifier(nn.Module):
    """Embed tokens, run a recurrent cell, classify from the last hidden state.

    ``keep_bias`` initialises the bias of the gate that keeps the old state (the LSTM's
    forget gate f or the GRU's update gate z) with :func:`init_keep_gate`. A large value
    (e.g. 3, sigmoid(3) = 0.95) starts the cell out remembering, which lets gradients
    reach far back from the start.
    """

    def __init__(self, kind: str, vocab_size: int, n_classes: int, config: RNNConfig = None,
                 keep_bias: Optional[float] = None):
        super().__init__()
        c = config or RNNConfig.default()
        self.embed = nn.Embedding(vocab_size, c.embed)
        self.rnn = Recurrent(make_cell(kind, c.embed, c.hidden))
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.hidden, n_classes)
        if keep_bias is not None:
            if kind == "rnn":
                raise ValueError("a plain RNN has no gate to bias: keep_bias needs lstm or gru")
            init_keep_gate(self.rnn.cell, keep_bias)

    def forward(self, tokens):  # tokens: (B, T)
        hs, _ = self.rnn(self.drop(self.embed(tokens)))  # (B, T, H)
        return self.out(self.drop(hs[:, -1]))  # (B, n_classes)


TORCH_RECURRENT = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class CharModel(nn.Module):
    """A character-level language model: predicts the next character at every step.

    ``fused=True`` runs the recurrence with PyTorch's ``nn.RNN``/``nn.LSTM``/``nn.GRU``:
    the same computation as our cells (the chapter checks it), with the loop over time in
    C++, several times faster to train. Its state is then in PyTorch's format."""

    def __init__(self, kind: str, vocab_size: int, config: RNNConfig = None,
                 fused: bool = False):
        super().__init__()
        c = config or RNNConfig.default()
        self.embed = nn.Embedding(vocab_size, c.embed)
        if fused:
            if kind not in TORCH_RECURRENT:
                raise ValueError(f"unknown cell kind {kind!r}; choose one of {sorted(CELLS)}")
            self.rnn = TORCH_RECURRENT[kind](c.embed, c.hidden, batch_first=True)
        else:
            self.rnn = Recurrent(make_cell(kind, c.embed, c.hidden))
        self.drop = nn.Dropout(c.dropout)  # active in training mode only
        self.out = nn.Linear(c.hidden, vocab_size)

    def forward(self, tokens, state=None, return_state: bool = False):  # tokens: (B, T)
        hs, state = self.rnn(self.drop(self.embed(tokens)), state)
        logits = self.out(self.drop(hs))  # (B, T, vocab)
        return (logits, state) if return_state else logits


@torch.no_grad()
def generate(
    model: CharModel,
    prompt_ids: torch.Tensor,
    n_new: int,
    temperature: float = 1.0,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Sample ``n_new`` ids after ``prompt_ids`` (1-D), feeding the state forward."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if prompt_ids.dim() != 1 or len(prompt_ids) == 0:
        raise ValueError("prompt_ids must be a non-empty 1-D tensor of ids")
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    logits, state = model(prompt_ids[None].to(dev), return_state=True)
    out = []
    for _ in range(n_new):
        probs = torch.softmax(logits[0, -1] / temperature, dim=-1).cpu()
        nxt = torch.multinomial(probs, 1, generator=generator)
        out.append(nxt.item())
        logits, state = model(nxt[None].to(dev), state, return_state=True)
    model.train(was_training)
    return torch.tensor(out, dtype=torch.long)


@torch.no_grad()
def perplexity(model: nn.Module, X: torch.Tensor, Y: torch.Tensor) -> float:
    """exp(mean cross-entropy per predicted token) of a language model on windows ``(X, Y)``:
    the number of equally likely choices the model is, on average, as unsure as."""
    was_training = model.training
    model.eval()
    logits = model(X)  # (n, block, vocab)
    ce = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
    model.train(was_training)
    return math.exp(ce.item())


def gradient_norm_vs_distance(model: SequenceClassifier, tokens: torch.Tensor,
                              targets: torch.Tensor) -> torch.Tensor:
    """How strongly the task's loss reaches back to earlier hidden states.

    Runs the classifier ``model`` over ``tokens (B, T)``, takes the cross-entropy of its
    prediction from the last hidden state against ``targets (B,)`` (the loss it is trained
    with), and returns, for every step ``t``, the norm ``||dL_i/dh_t||`` of one sequence's
    loss ``L_i`` with respect to its hidden state, averaged over the ``B`` sequences. The
    result is reversed, so that index ``d`` is the distance ``d = T - 1 - t`` from the loss.
    """
    if tokens.dim() != 2 or targets.shape != tokens.shape[:1]:
        raise ValueError(f"expected tokens (B, T) and targets (B,), got {tuple(tokens.shape)} "
                         f"and {tuple(targets.shape)}")
    cell = model.rnn.cell
    x = model.embed(tokens)  # (B, T, I)
    state = cell.init_state(x.shape[0], x.device)
    hs = []
    for t in range(x.shape[1]):
        state = cell(x[:, t], state)
        h = cell.hidden(state)
        h.retain_grad()  # keep dL/dh_t although h_t is not a leaf
        hs.append(h)
    # summed over sequences, so that row i of each gradient is dL_i/dh_t
    loss = nn.functional.cross_entropy(model.out(hs[-1]), targets, reduction="sum")
    loss.backward()
    norms = torch.stack([h.grad.norm(dim=1).mean() for h in hs])  # (T,)
    model.zero_grad(set_to_none=True)
    return norms.flip(0).detach()
