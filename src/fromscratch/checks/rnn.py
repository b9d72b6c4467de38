"""Checks for the RNN / LSTM / GRU chapter's exercises."""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn as nn

from ..models.rnn import GRUCell, LSTMCell, RNNCell, init_keep_gate, perplexity
from .core import (
    Case,
    accuracy_evaluation,
    check_function,
    check_measurement,
    check_trained_model,
    drawn_seed,
)

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


def _gru_cases(g: Optional[torch.Generator] = None):
    g = torch.Generator().manual_seed(1) if g is None else g

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


def _fresh_gru(g: torch.Generator) -> list:
    B, I, H = (int(torch.randint(1, 7, (1,), generator=g)) for _ in range(3))
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return [Case((r(B, I), r(B, H), r(3 * H, I) * 0.5, r(3 * H, H) * 0.5, r(3 * H) * 0.5,
                  r(3 * H) * 0.5), label=f"drawn at check time: batch {B}, input {I}, "
                 f"hidden {H}")]


#: What the GRU exercise refuses: the course's GRU cell and PyTorch's GRUs, however they
#: are reached (``torch.gru_cell`` is what nn.GRUCell calls; the operators catch the rest).
FORBIDDEN_GRU = [GRUCell, nn.GRUCell.forward, nn.GRU.forward, (torch, "gru_cell"),
                 (torch, "gru"), "aten::gru_cell", "aten::gru"]


def check_gru_step(fn: Callable, strict: Optional[bool] = None):
    """Compare ``fn(x, h, weight_ih, weight_hh, bias_ih, bias_hh)`` with ``nn.GRUCell``;
    the course's and PyTorch's GRUs are refused."""
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
        atol=1e-5, strict=strict, forbid=FORBIDDEN_GRU, fresh=_fresh_gru,
    )


GRUS = (GRUCell, nn.GRU, nn.GRUCell)
OTHER_RECURRENT = (RNNCell, LSTMCell, nn.RNN, nn.LSTM, nn.RNNCell, nn.LSTMCell)


def _steps_into(module, x):
    """The per-step inputs ``(B, I)`` that one call of a GRU module receives."""
    if isinstance(module, nn.GRU):
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            return []  # a packed or unbatched sequence: not checked
        return list((x if module.batch_first else x.transpose(0, 1)).unbind(1))
    return [x]  # a cell: one step per call


def _replace_first_step(module, x, new_first):
    if isinstance(module, nn.GRU):
        x = x.clone()
        if module.batch_first:
            x[:, 0] = new_first
        else:
            x[0] = new_first
        return x
    return new_first


def _step_inputs(model, grus, x) -> list:
    """The per-step inputs ``(B, I)`` the model's GRUs receive while it reads ``x``."""
    steps = []

    def record(module, args):
        steps.extend(_steps_into(module, args[0]))

    handles = [m.register_forward_pre_hook(record) for m in grus]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return steps


def _reads_every_token(model, grus, pair) -> Optional[list]:
    """``None`` if the GRU reads the whole sequence, one token per step in order: with the
    token at a middle position (or the last) changed, exactly that step's input changes.
    A model that feeds the GRU only the first token (which is all this task needs)
    passes a probe of the first position alone."""
    T = pair.shape[1]
    was_training = model.training
    model.eval()
    try:
        for k in sorted({T // 2, T - 1, 1} - {0}):
            probe = pair[:1].repeat(2, 1)
            probe[1, k] = (probe[0, k] + 1) % 8
            steps = _step_inputs(model, grus, probe)
            differs = [not torch.equal(s[0], s[1]) for s in steps]
            if len(steps) != T or differs != [i == k for i in range(T)]:
                changed = [i for i, d in enumerate(differs) if d]
                return [f"input: two sequences of {T} tokens that differ only at position {k}; "
                        f"the GRU ran {len(steps)} steps, and its input changed at step(s) "
                        f"{changed or 'none'}: a GRU reading the sequence left to right, "
                        f"one token per step, runs {T} steps and sees the change at step {k}.",
                        "hint: run the GRU over every token of the sequence, not only the "
                        "first ones: the exercise is to remember the first token while "
                        "reading all the others."]
    finally:
        model.train(was_training)
    return None


def _gru_reads_first_token_first(model, pair) -> Optional[list]:
    """``None`` if the model is built on a GRU that reads the sequence left to right and
    through which alone the first token reaches the output; else the feedback lines.

    ``pair`` holds two sequences equal except for their first token. The inputs that the
    GRU receives at each step are recorded: only step 0 may differ between the two. Then
    step 0's input of the second sequence is replaced by the first's: the two outputs must
    become equal (no path from the first token to the output bypasses the GRU)."""
    grus = [m for m in model.modules() if isinstance(m, GRUS)]
    if not grus:
        others = sorted({type(m).__name__ for m in model.modules()
                         if isinstance(m, OTHER_RECURRENT)})
        found = f" (it has {', '.join(others)})" if others else ""
        return [f"the exercise asks for a GRU, and the model holds none{found}.",
                "hint: build it on the course's GRU cell (SequenceClassifier('gru', ...)) or on "
                "nn.GRU, and make that GRU remember."]
    if any(getattr(m, "bidirectional", False) for m in grus):
        return ["the GRU is bidirectional: its backward direction reads the first token last, "
                "so nothing has to be remembered.",
                "hint: use one direction, left to right, as the exercise asks."]
    steps, first = [], {}

    def record(module, args):
        steps.extend(_steps_into(module, args[0]))

    def patch(module, args):
        if "done" in first:
            return None
        first["done"] = True
        x = args[0]
        new = _steps_into(module, x)[0].clone()
        new[1] = new[0]
        return (_replace_first_step(module, x, new), *args[1:])

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            handles = [m.register_forward_pre_hook(record) for m in grus]
            try:
                model(pair)
            finally:
                for h in handles:
                    h.remove()
            handles = [m.register_forward_pre_hook(patch) for m in grus]
            try:
                patched = model(pair)
            finally:
                for h in handles:
                    h.remove()
    finally:
        model.train(was_training)
    differs = [not torch.equal(s[0], s[1]) for s in steps]
    if not steps:
        return ["the model never runs its GRU on the sequence.",
                "hint: embed the tokens, run the GRU over them, classify its last hidden state."]
    if differs[-1] and not any(differs[:-1]) and len(differs) > 1:
        return ["the GRU reads the sequence backwards: the first token reaches it at the last "
                "step, so nothing has to be remembered (did you flip the tokens?).",
                "hint: read left to right as the exercise asks; the first token must survive "
                "every later step in the GRU's state."]
    if not differs[0] or any(differs[1:]):
        return ["the GRU does not read the sequence left to right, one token per step: the "
                "first token should change only its first step's input.",
                "hint: embed the tokens (B, T) -> (B, T, E) and run the GRU over the time axis."]
    if not torch.allclose(patched[0], patched[1], atol=1e-6):
        return ["the first token reaches the output by a path around the GRU: with the GRU's "
                "first input made equal, the two outputs should be equal too.",
                "hint: classify from the GRU's last hidden state only, so the answer has to be "
                "remembered through the recurrence."]
    return _reads_every_token(model, grus, pair)


def check_memory_model(make_model: Callable, strict: Optional[bool] = None, length: int = 50,
                       epochs: int = 6, seed: int = 0):
    """Train ``make_model(vocab_size, n_classes)`` (a GRU, reading left to right) on the
    remember-first task and test it. The course's :func:`init_keep_gate` (also reached
    through ``SequenceClassifier(..., keep_bias=...)``) is refused: setting the gate's
    bias is the exercise."""
    from ..data import remember_first
    from ..training import fit

    def train(model):
        X, y = remember_first(2000, length, seed=seed)
        fit(model, (X, y), epochs=epochs, lr=3e-3, batch_size=64, seed=seed, clip_grad=1.0,
            device=torch.device("cpu"), progress=False)

    pair = remember_first(1, length, seed=seed + 3)[0].repeat(2, 1)
    pair[1, 0] = (pair[0, 0] + 1) % 4  # two sequences that differ in the first token only

    def below_bar(model, acc):
        return [
            "hint: the GRU still forgets: at the start its update gate z is half open "
            "(sigmoid(0) = 0.5), so the first token fades within a few steps and no "
            "gradient reaches it. Set the bias of the gate that keeps the state (GRU: "
            "update gate z, block 1 of bias_ih) to a large value such as 3."]

    return check_trained_model(
        "rnn-memory-model", make_model, "make_memory_model", (8, 4),
        probe=remember_first(3, length, seed=seed + 2)[0],
        probe_text=f"token ids of shape (3, {length})",
        out_shape=(3, 4), shape_hint="return one row of 4 logits per sequence, computed from the "
        "hidden state after the last step.",
        requirements=[lambda model: _gru_reads_first_token_first(model, pair)],
        train=train, bar=MEMORY_BAR,
        score_text=lambda a: f"{a:.1%} validation accuracy at length {length} (chance 25%)",
        below_bar=below_bar, forbid=[init_keep_gate], strict=strict, seed=seed,
        evaluation=accuracy_evaluation(  # 500 new sequences (under the grader: drawn)
            lambda g: remember_first(500, length, seed=drawn_seed(g, seed + 1))))


def _stream_logits(model, ids):
    return model(ids[None, :-1])[0]  # (N - 1, vocab): one pass, the state carried along


def check_stream_perplexity(measure: Callable, model: nn.Module, ids: torch.Tensor,
                            strict: Optional[bool] = None):
    """Run ``measure(model, ids)`` and compare with the perplexity of reading ``ids`` as one
    sequence (the state carried from the first character to the last)."""
    from ..data import char_windows

    model.eval()
    with torch.no_grad():
        logits = _stream_logits(model, ids)
        ce = nn.functional.cross_entropy(logits, ids[1:]).item()
        shifted = nn.functional.cross_entropy(logits, ids[:-1]).item()
        fresh = nn.functional.cross_entropy(model(ids[:-1, None])[:, 0], ids[1:]).item()
    expected = math.exp(ce)
    known = {
        "this is the mean cross-entropy (in nats); perplexity is its exponential, "
        "math.exp(loss).": ce,
        "this is the cross-entropy in bits; perplexity is exp of the mean loss in nats "
        "(or 2 ** bits).": ce / math.log(2),
        "every character was read from a fresh zero state: pass the state on from one "
        "character to the next (model(x, state, return_state=True)), or read the text as "
        "one sequence of shape (1, N - 1).": math.exp(fresh),
        "this is the windowed perplexity (windows of 64, each from a zero state), the "
        "chapter's measurement; the exercise reads the text as one sequence.":
        perplexity(model, *char_windows(ids, 64)),
        "the targets are the inputs themselves: the model predicts the *next* character, "
        "so score the logits at position t against ids[t + 1].": math.exp(shifted),
    }
    def fresh(g):
        n = int(torch.randint(len(ids) // 3, len(ids) // 2, (1,), generator=g))
        start = int(torch.randint(0, len(ids) - n, (1,), generator=g))
        part = ids[start:start + n].clone()
        model.eval()
        with torch.no_grad():
            value = math.exp(nn.functional.cross_entropy(_stream_logits(model, part),
                                                         part[1:]).item())
        return ((model, part), value, f"the same model and {n:,} characters from position "
                f"{start:,} of test_ids, chosen at check time")

    return check_measurement(
        "rnn-perplexity", measure, "measure_stream_perplexity", (model, ids), expected, fresh=fresh,
        known=known, model=model, forbid=[perplexity], rel_tol=1e-3,
        input_text=f"the chapter's trained character model and test_ids ({len(ids):,} "
        "characters)",
        hint="read ids[:-1] as one sequence (shape (1, N - 1)) in eval mode without "
        "gradients, score the logits against the next characters ids[1:] with the mean "
        "cross-entropy, and return math.exp of it.",
        success=lambda v: f"perplexity {v:.2f} reading the text as one sequence; compare it "
        "with the chapter's test perplexity on windows of 64.",
        strict=strict)
