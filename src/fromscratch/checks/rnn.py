"""Checks for the RNN / LSTM / GRU chapter's exercises."""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn as nn

from ..models.rnn import GRUCell, LSTMCell, perplexity
from .core import Case, check_function, check_measurement, check_trained_model

MEMORY_BAR = 0.9


def _gru_reference(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    cell = nn.GRUCell(weight_ih.shape[1], weight_hh.shape[1])
    with torch.no_grad():
        for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
                               (weight_ih, weight_hh, bias_ih, bias_hh)):
            getattr(cell, name).copy_(value)
        return cell(x, h)


def _gru_variant(flip_z=False, reset_before=False, order="rzn", no_reset=False,
                 b_hn_outside=False, no_bias_hh=False):
    """Typical wrong GRUs, used to recognise the learner's mistake."""

    def step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
        H = h.shape[1]
        Wi = dict(zip(order, weight_ih.split(H)))
        Wh = dict(zip(order, weight_hh.split(H)))
        bi = dict(zip(order, bias_ih.split(H)))
        bh = dict(zip(order, (bias_hh * 0 if no_bias_hh else bias_hh).split(H)))
        r = torch.sigmoid(x @ Wi["r"].T + bi["r"] + h @ Wh["r"].T + bh["r"])
        z = torch.sigmoid(x @ Wi["z"].T + bi["z"] + h @ Wh["z"].T + bh["z"])
        if no_reset:
            r = torch.ones_like(r)
        if b_hn_outside:
            n = torch.tanh(x @ Wi["n"].T + bi["n"] + r * (h @ Wh["n"].T) + bh["n"])
        elif reset_before:
            n = torch.tanh(x @ Wi["n"].T + bi["n"] + (r * h) @ Wh["n"].T + bh["n"])
        else:
            n = torch.tanh(x @ Wi["n"].T + bi["n"] + r * (h @ Wh["n"].T + bh["n"]))
        return z * n + (1 - z) * h if flip_z else (1 - z) * n + z * h

    return step


def _gru_cases():
    g = torch.Generator().manual_seed(1)

    def case(B, I, H, label, h_scale=1.0, x_scale=1.0):
        r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
        return Case(
            (r(B, I) * x_scale, r(B, H) * h_scale, r(3 * H, I) * 0.5, r(3 * H, H) * 0.5,
             r(3 * H) * 0.5, r(3 * H) * 0.5),
            label=label,
        )

    return [
        case(1, 3, 4, "one sequence, input 3, hidden 4"),
        case(5, 2, 6, "batch of 5"),
        case(3, 4, 4, "previous state all zeros", h_scale=0.0),
        case(2, 1, 1, "hidden size 1"),
        case(4, 3, 5, "large inputs (gates saturate)", x_scale=10.0),
    ]


def check_gru_step(fn: Callable, strict: Optional[bool] = None):
    """Compare ``fn(x, h, weight_ih, weight_hh, bias_ih, bias_hh)`` with ``nn.GRUCell``."""
    mistakes = [
        (_gru_variant(flip_z=True),
         "the update gate is the wrong way round: PyTorch keeps the old state with weight z "
         "and takes the candidate with weight (1 - z): h_new = (1 - z) * n + z * h."),
        (_gru_variant(reset_before=True),
         "you reset h before the matrix multiply, W_hn (r * h). That is the 2014 paper's "
         "form; PyTorch applies r after it: r * (W_hn h + b_hn)."),
        (_gru_variant(order="zrn"),
         "the gate blocks are in the wrong order: PyTorch stacks them as reset, update, "
         "new (r, z, n) in weight_ih, weight_hh and both biases."),
        (_gru_variant(no_reset=True),
         "the reset gate is missing from the candidate n."),
        (_gru_variant(b_hn_outside=True),
         "the bias b_hn sits outside the reset gate: PyTorch computes "
         "n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), with b_hn inside the product."),
        (_gru_variant(no_bias_hh=True),
         "bias_hh is missing: every gate adds both biases, b_i* and b_h*."),
    ]
    return check_function(
        "rnn-gru-step", fn, _gru_reference, _gru_cases(), mistakes=mistakes,
        hint="split each weight and bias into 3 blocks of hidden_size rows (r, z, n); r and z "
        "use sigmoid of input part + hidden part (both biases); n = tanh(W_in x + b_in + "
        "r * (W_hn h + b_hn)); h_new = (1 - z) * n + z * h, of the shape of h.",
        atol=1e-5, strict=strict,
    )


def check_memory_model(make_model: Callable, strict: Optional[bool] = None, length: int = 50,
                       epochs: int = 6, seed: int = 0):
    """Train ``make_model(vocab_size, n_classes)`` on the remember-first task and test it."""
    from ..data import remember_first
    from ..training import accuracy, fit

    def train(model):
        X, y = remember_first(2000, length, seed=seed)
        fit(model, (X, y), epochs=epochs, lr=3e-3, batch_size=64, seed=seed, clip_grad=1.0,
            device=torch.device("cpu"), progress=False)
        return accuracy(model, *remember_first(500, length, seed=seed + 1))

    def below_bar(model, acc):
        gated = any(isinstance(m, (GRUCell, LSTMCell, nn.GRU, nn.LSTM, nn.GRUCell, nn.LSTMCell))
                    for m in model.modules())
        return [
            "hint: the model is gated but still forgets: at the start its keep gate is half "
            "closed (sigmoid(0) = 0.5), so the first token fades within a few steps and no "
            "gradient reaches it. Initialise the bias of the gate that keeps the state "
            "(GRU: update gate z; LSTM: forget gate f) to a large value such as 3."
            if gated else
            "hint: a plain RNN forgets the first token; use a gated cell (kind='lstm' or "
            "'gru') so the memory has an additive path through time."]

    return check_trained_model(
        "rnn-memory-model", make_model, "make_memory_model", (8, 4),
        probe=remember_first(3, length, seed=seed + 2)[0], probe_text=f"token ids of shape (3, {length})",
        out_shape=(3, 4), shape_hint="return one row of 4 logits per sequence, computed from the "
        "hidden state after the last step.",
        train=train, bar=MEMORY_BAR,
        score_text=lambda a: f"{a:.1%} validation accuracy at length {length} (chance 25%)",
        below_bar=below_bar, strict=strict, seed=seed)


def check_perplexity(measure: Callable, model: nn.Module, X: torch.Tensor, Y: torch.Tensor,
                     strict: Optional[bool] = None):
    """Run ``measure(model, X, Y)`` and compare with the model's validation perplexity."""
    expected = perplexity(model, X, Y)
    ce = math.log(expected)
    known = {
        "this is the mean cross-entropy (in nats); perplexity is its exponential, "
        "math.exp(loss).": ce,
        "this is the cross-entropy in bits; perplexity is exp of the mean loss in nats "
        "(or 2 ** bits).": ce / math.log(2),
    }
    return check_measurement(
        "rnn-perplexity", measure, "measure_perplexity", (model, X, Y), expected, known=known,
        model=model, forbid=[perplexity],
        input_text="the chapter's trained character model and the validation windows",
        hint="compute the mean cross-entropy of model(X) against Y over every character, then "
        "take math.exp of it. (If your number is far too large: did you exponentiate the "
        "*summed* loss instead of the mean per character?)",
        success=lambda v: f"validation perplexity {v:.3f}: on average the model is as unsure as "
        f"a uniform choice among {v:.1f} characters (the vocabulary has "
        f"{model.out.out_features}).",
        strict=strict)
