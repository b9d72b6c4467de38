"""Checks for the LLM chapter's exercises: top-p filtering, a KV-cache attention step and
the DPO loss."""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ..models import gpt, preference
from ..models import transformer as tr
from .core import Case, check_function, describe, finish
from .transformer import ATTENTION_OPS, ATTENTION_PACKAGES

# --- top-p (nucleus) filtering -----------------------------------------------------------


def _top_p_variant(include_crossing=True, descending=True, on="probs", inclusive=False):
    """Typical wrong nucleus filters, used to recognise the learner's mistake."""

    def top_p(logits, p):
        sorted_logits, _ = torch.sort(logits, dim=-1, descending=descending)
        probs = sorted_logits.softmax(-1) if on == "probs" else sorted_logits
        cumulative = probs.cumsum(-1)
        if inclusive:
            keep = cumulative - probs <= p
        else:
            keep = (cumulative - probs < p) if include_crossing else (cumulative < p)
        n_keep = keep.sum(-1, keepdim=True).clamp(min=1)
        cutoff = sorted_logits.gather(-1, n_keep - 1)
        if descending:
            return logits.masked_fill(logits < cutoff, float("-inf"))
        return logits.masked_fill(logits > cutoff, float("-inf"))

    return top_p


def _top_p_cases():
    g = torch.Generator().manual_seed(5)
    peaked = torch.tensor([[4.0, 1.0, 0.5, 0.0, -1.0]])
    return [
        Case((torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])), 0.7),
             label="probabilities 0.5, 0.3, 0.15, 0.05 and p = 0.7 (keep 0.5 and 0.3)"),
        Case((torch.log(torch.tensor([[0.05, 0.15, 0.5, 0.3]])), 0.9),
             label="the same tokens in another order, p = 0.9"),
        Case((peaked, 0.5), label="one token holds 0.9 of the mass, p = 0.5 (keep it alone)"),
        Case((torch.randn(3, 10, generator=g) * 2, 0.8), label="3 rows of 10 random logits"),
        Case((torch.randn(2, 4, 12, generator=g), 0.6),
             label="a (batch, time, vocabulary) tensor: filter every row of the last axis"),
        Case((torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.125]])) + 1.0, 0.75),
             label="probabilities 0.5, 0.25, 0.125, 0.125 and p = 0.75: the first two reach "
             "p exactly (keep them, not the others)"),
        Case((torch.tensor([[20.0, 0.0, -1.0, -2.0], [3.0, 2.0, 1.0, 0.0]]), 1.0),
             label="p = 1 keeps everything, even tokens whose probability rounds to 0"),
    ]


def _fresh_top_p(g: torch.Generator) -> list:
    rows, V = (int(torch.randint(2, 6, (1,), generator=g)),
               int(torch.randint(5, 40, (1,), generator=g)))
    p = round(float(torch.rand(1, generator=g)) * 0.8 + 0.1, 3)
    return [Case((torch.randn(rows, V, generator=g) * 2, p),
                 label=f"drawn at check time: {rows} rows of {V} logits, p = {p}")]


def check_top_p(fn: Callable, strict: Optional[bool] = None):
    """Compare ``fn(logits, p)`` with the chapter's :func:`gpt.top_p_filter`."""
    mistakes = [
        (_top_p_variant(include_crossing=False),
         "the token that carries the mass past p is dropped: keep a token when the mass of "
         "the tokens *more* likely than it is below p (cumsum - prob < p), so the kept "
         "tokens add up to at least p."),
        (_top_p_variant(inclusive=True),
         "a token is kept when the mass before it equals p exactly; the kept tokens already "
         "reach p then, so keep a token only while the mass before it is below p (<, not "
         "<=)."),
        (_top_p_variant(on="logits"),
         "the cumulative sum runs over logits, not probabilities: apply softmax to the "
         "sorted logits before summing."),
        (_top_p_variant(descending=False),
         "the tokens are sorted from least to most likely; the nucleus is made of the most "
         "likely tokens (sort descending)."),
    ]
    return check_function(
        "llm-top-p", fn, gpt.top_p_filter, _top_p_cases(), mistakes=mistakes,
        forbid=[gpt.top_p_filter, gpt.sample_next, gpt.generate], atol=1e-6,
        hint="work on each row sorted from most to least likely: a token belongs to the "
        "nucleus while the probability mass of the tokens before it is still below p; give "
        "every other token -inf in its original position, and return the logits unchanged "
        "for p = 1.",
        strict=strict, fresh=_fresh_top_p)


# --- one decoding step with a KV cache ---------------------------------------------------


def _cache_step_reference(q, k_new, v_new, cache_k, cache_v):
    k = torch.cat([cache_k, k_new], dim=-2)
    v = torch.cat([cache_v, v_new], dim=-2)
    out = F.scaled_dot_product_attention(q, k, v)
    return out, k, v


def _cache_step_variant(append=True, scale=True, dim=-2):
    def step(q, k_new, v_new, cache_k, cache_v):
        k = torch.cat([cache_k, k_new], dim=dim) if append else k_new
        v = torch.cat([cache_v, v_new], dim=dim) if append else v_new
        scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale else 1.0)
        return scores.softmax(-1) @ v, k, v

    return step


def _cache_step_cases(g: Optional[torch.Generator] = None):
    drawn = g is not None
    g = torch.Generator().manual_seed(11) if g is None else g
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731

    def case(B, H, past, d, label):
        return Case((r(B, H, 1, d), r(B, H, 1, d), r(B, H, 1, d), r(B, H, past, d),
                     r(B, H, past, d)), label=label)

    if drawn:
        past = int(torch.randint(1, 60, (1,), generator=g))
        return [case(2, 3, past, 8, f"drawn at check time: 2 sequences, 3 heads, {past} "
                     "cached positions")]
    return [
        case(1, 1, 3, 4, "one head, 3 cached positions, head width 4"),
        case(2, 4, 7, 8, "batch of 2, 4 heads, 7 cached positions"),
        case(1, 2, 0, 4, "an empty cache (the first token): it attends to itself only"),
        case(3, 2, 15, 6, "3 sequences, 15 cached positions"),
    ]


def check_cache_step(fn: Callable, strict: Optional[bool] = None):
    """Compare ``fn(q, k_new, v_new, cache_k, cache_v)`` (one new position per sequence,
    every tensor ``(B, H, T, d)``) with attention over the cached and new keys."""
    mistakes = [
        (_cache_step_variant(append=False),
         "the new query attends to the new key only: append k_new and v_new to the cache "
         "along the time axis and attend to all of it."),
        (_cache_step_variant(scale=False),
         "the scores are not scaled: divide q k^T by sqrt(d)."),
    ]
    return check_function(
        "llm-kv-cache-step", fn, _cache_step_reference, _cache_step_cases(),
        mistakes=mistakes, atol=1e-5,
        forbid=[tr.attention, tr.KVCache.append, tr.MultiHeadAttention.forward,
                (F, "scaled_dot_product_attention"),
                (torch._C._nn, "scaled_dot_product_attention"), *ATTENTION_OPS,
                *ATTENTION_PACKAGES],
        hint="grow the cache along the time axis (dim -2) first; the new position may see "
        "every cached position and itself, so it needs no mask; then scaled dot-product "
        "attention of q over the grown cache, and return the grown cache too.",
        strict=strict, fresh=_cache_step_cases)


# --- the DPO loss -------------------------------------------------------------------------


def _dpo_variant(kind):
    def loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
        if kind == "swapped":
            m = (policy_rejected - ref_rejected) - (policy_chosen - ref_chosen)
        elif kind == "no_reference":
            m = policy_chosen - policy_rejected
        else:
            m = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
        if kind == "no_beta":
            return -F.logsigmoid(m).mean()
        if kind == "sum":
            return -F.logsigmoid(beta * m).sum()
        if kind == "no_log":
            return -torch.sigmoid(beta * m).mean()
        return -F.logsigmoid(beta * m).mean()

    return loss


def _dpo_cases(g: Optional[torch.Generator] = None):
    drawn = g is not None
    g = torch.Generator().manual_seed(13) if g is None else g

    def case(n, beta, label):
        r = lambda: -20 + 5 * torch.randn(n, generator=g)  # noqa: E731
        return Case((r(), r(), r(), r(), beta), label=label)

    if drawn:
        beta = round(float(torch.rand(1, generator=g)) * 2 + 0.05, 3)
        return [case(5, beta, f"drawn at check time: 5 pairs, beta = {beta}")]
    return [
        Case((torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([-11.0]),
              torch.tensor([-11.0]), 0.5),
             label="one pair: the policy raised the chosen by 1 and lowered the rejected by 1"),
        case(4, 0.1, "4 pairs, beta = 0.1"),
        case(6, 2.0, "6 pairs, beta = 2"),
        Case((torch.tensor([-300.0, -50.0, -10.0]), torch.tensor([-50.0, -300.0, -12.0]),
              torch.full((3,), -100.0), torch.full((3,), -100.0), 1.0),
             label="margins of -250, 250 and 2 (sigmoid(-250) underflows to 0 in float32)"),
    ]


def check_dpo_loss(fn: Callable, strict: Optional[bool] = None):
    """Compare ``fn(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)`` with
    the chapter's :func:`preference.dpo_loss`."""
    mistakes = [
        (_dpo_variant("swapped"),
         "chosen and rejected are swapped: the margin is (policy - reference) of the "
         "*chosen* minus that of the *rejected* completion."),
        (_dpo_variant("no_reference"),
         "the reference model is missing: DPO compares each log-probability with the "
         "reference's, (pi_w - ref_w) - (pi_l - ref_l)."),
        (_dpo_variant("no_beta"), "beta is missing: multiply the margin by beta."),
        (_dpo_variant("sum"), "the loss is summed over pairs; take the mean."),
        (_dpo_variant("no_log"),
         "the loss uses sigmoid, not log-sigmoid: DPO is the negative log-likelihood "
         "-log sigmoid(beta * margin) (use F.logsigmoid, which stays finite for large "
         "margins)."),
    ]
    result = check_function(
        "llm-dpo-loss", fn, preference.dpo_loss, _dpo_cases(), mistakes=mistakes,
        forbid=[preference.dpo_loss, preference.train_dpo], atol=1e-5,
        hint="the margin compares how much the policy raised the chosen completion's "
        "log-probability over the reference with how much it raised the rejected one's; "
        "the loss is the mean negative log-sigmoid of beta times it.",
        strict=False, fresh=_dpo_cases)
    if not result.passed:
        return finish(result, strict)
    return _check_dpo_gradient(fn, strict)


def _check_dpo_gradient(fn: Callable, strict: Optional[bool]):
    """The loss must be trainable: its gradient with respect to the policy's
    log-probabilities must equal the reference's (a detached margin passes the values)."""
    from .core import UsedForbidden, call_guarded, failed, passed, used_forbidden

    g = torch.Generator().manual_seed(17)
    values = [-20 + 5 * torch.randn(4, generator=g) for _ in range(4)]
    grads = []
    for f in (preference.dpo_loss, fn):
        pc, pr = (values[0].clone().requires_grad_(), values[1].clone().requires_grad_())
        try:
            args = (pc, pr, values[2].clone(), values[3].clone(), 0.5)
            loss = f(*args) if f is preference.dpo_loss else call_guarded(
                f, args, forbid=[preference.dpo_loss, preference.train_dpo])
            loss.backward()
        except UsedForbidden as exc:
            return used_forbidden("llm-dpo-loss", "dpo_loss", exc.name, strict)
        except Exception as exc:  # no graph: detached or computed under no_grad
            return failed("llm-dpo-loss", [
                "the values are right, but the loss cannot be trained: backward() raised "
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}",
                "input: policy log-probabilities with requires_grad=True (4 pairs, beta = 0.5)",
                "hint: compute the loss from the policy's log-probabilities without "
                "torch.no_grad() or .detach(); only the reference's are constants."], strict)
        grads.append((pc.grad, pr.grad))
    for name, want, got in zip(("policy_chosen", "policy_rejected"), grads[0], grads[1]):
        if got is None or not torch.allclose(want, got, atol=1e-6):
            return failed("llm-dpo-loss", [
                f"the values are right, but the gradient with respect to {name} is wrong",
                f"expected gradient: {describe(want)}", f"received gradient: {describe(got)}",
                "hint: nothing on the policy's side may be detached."], strict)
    return passed("llm-dpo-loss", "all cases match, and the loss trains the policy "
                  "(its gradients match the reference's).", strict)


# --- a character language model of your design --------------------------------------------

LM_BAR = 2.1  # validation loss (nats per character) after the check's 300 steps
LM_STEPS = 300


#: A validation loss below this after the check's 300 steps is no achievement but a leak:
#: the best causal models of the chapter stay above 1.9 nats per character here.
LEAK_FLOOR = 1.2


def _causality(model, vocab_size: int) -> Optional[list]:
    """A language model must not see the future: changing the token at position p may not
    change any output before p. Probed at several lengths (1 to the block size, beyond any
    length a learner might hard-code), at several positions (the last, a middle one, the
    second), with token ids from the whole vocabulary (a leak may hide behind some ids),
    in evaluation and training mode."""
    g = torch.Generator().manual_seed(0)
    for T in (1, 7, 33, 64):
        x = torch.randint(0, vocab_size, (4, T), generator=g)
        positions = sorted({T - 1, T // 2, 1} - {0}) if T > 1 else []
        for mode in ("eval", "training"):
            model.train(mode == "training")
            try:
                with torch.no_grad():
                    torch.manual_seed(0)
                    a = model(x)
                    changed = []
                    for p in positions:
                        y = x.clone()
                        y[:, p] = (y[:, p] + 1 + torch.randint(
                            0, vocab_size - 1, (len(y),), generator=g)) % vocab_size
                        torch.manual_seed(0)
                        b = model(y)
                        changed.append((p, (a[:, :p] - b[:, :p]).abs().max().item()))
            finally:
                model.train()
            for p, diff in changed:
                if diff > 1e-5:
                    return [f"input: 4 sequences of {T} tokens, then the same with only the "
                            f"token at position {p} changed ({mode} mode); the outputs at "
                            f"positions 0..{p - 1} differ by up to {diff:.3g}: the model sees "
                            "the future, so predicting the next token is copying it "
                            "(normalising over the time axis, as batch or instance norm do, "
                            "also leaks the future).",
                            "hint: use causal attention (GPTConfig / Block(..., causal=True)) "
                            "at every length, not a mask of a fixed size; a non-causal "
                            "model's training loss falls fast and means nothing."]
    return None


def check_char_lm(make_model: Callable, strict: Optional[bool] = None, seed: int = 0):
    """Train ``make_model(vocab_size, block_size)`` for 300 steps (the chapter's recipe:
    AdamW at 3e-3, batches of 24 windows of 64 characters, warm-up and cosine decay) on
    the first 90% of the course text and measure its validation loss on the rest; it
    must be causal and reach 2.1 nats per character."""
    from ..data import CharVocab, load_text
    from .core import check_trained_model

    text = load_text()
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    n = int(0.9 * len(ids))
    train_ids, val_ids = ids[:n], ids[n:]
    V, block = len(vocab), 64

    def train(model):
        gpt.train_lm(model, train_ids, gpt.LMRecipe(lr=3e-3, batch_size=24),
                     steps=LM_STEPS, block=block, seed=seed)
        return gpt.lm_loss(model, val_ids, block)

    def below_bar(model, loss):
        return [f"hint: the chapter's GPTConfig.default({V}) reaches about 2.05 here; a "
                "model that reads only the current token (a bigram model) stays near 2.5."]

    scores = {}

    def scored_train(model):
        scores["loss"] = train(model)
        return scores["loss"]

    def plausible(model):
        if scores["loss"] < LEAK_FLOOR:
            return [f"validation loss {scores['loss']:.3f} nats per character after "
                    f"{LM_STEPS} steps is implausibly low (causal models of the chapter "
                    f"stay above 1.9; the check refuses anything below {LEAK_FLOOR}): the "
                    "model reads the token it is asked to predict, a leak the causality "
                    "probe did not catch.",
                    "hint: every output position may use only the tokens up to itself."]
        return None

    return check_trained_model(
        "llm-char-model", make_model, "make_char_lm", (V, block),
        probe=torch.randint(0, V, (3, block)),
        probe_text=f"token ids of shape (3, {block}) from a vocabulary of {V}",
        out_shape=(3, block, V),
        shape_hint="return next-token logits of shape (batch, time, vocab_size).",
        requirements=[lambda model: _causality(model, V)], train=scored_train, bar=LM_BAR,
        higher_is_better=False,
        after_training=[plausible],
        score_text=lambda v: f"validation loss {v:.3f} nats per character",
        below_bar=below_bar, strict=strict, seed=seed)


# --- an experiment: what is the context worth? ------------------------------------------

def _context_gain_reference(model, ids, block=64, shift=1, scale=1.0, sign=1.0):
    n = (len(ids) - shift) // block
    x = ids[:n * block].view(n, block)
    y = ids[shift:n * block + shift].view(n, block)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    ce = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # (n, block)
    per_position = ce.mean(0) * scale
    return sign * (per_position[:8].mean() - per_position[-8:].mean()).item()


def check_context_gain(measure: Callable, model, ids, strict: Optional[bool] = None):
    """Compare ``measure(model, ids)`` with the drop in mean loss (nats) from the first 8
    to the last 8 positions of non-overlapping windows of 64."""
    from .core import check_measurement

    ids = ids[: len(ids) // 64 * 64]  # a multiple of 64: the last window has no next token
    expected = _context_gain_reference(model, ids)
    known = {
        "the targets are not shifted: position t must predict token t + 1 (y = ids[t + 1]), "
        "not the token it reads.": _context_gain_reference(model, ids, shift=0),
        "the loss is in bits (log base 2); the exercise asks for nats (natural log).":
            _context_gain_reference(model, ids, scale=1 / math.log(2)),
        "the sign is reversed: return the loss at the first 8 positions minus the loss "
        "at the last 8.":
            _context_gain_reference(model, ids, sign=-1.0),
    }
    def fresh(g):
        n = int(torch.randint(len(ids) // 128, len(ids) // 64, (1,), generator=g)) * 64
        start = int(torch.randint(0, len(ids) - n + 1, (1,), generator=g))
        part = ids[start:start + n].clone()
        return ((model, part), _context_gain_reference(model, part),
                f"the same model and {n:,} validation characters from position {start:,}, "
                "chosen at check time")

    return check_measurement(
        "llm-context-gain", measure, "measure_context_gain", (model, ids), expected, fresh=fresh,
        known=known, model=model, rel_tol=1e-3, abs_tol=1e-4,
        input_text=f"the setup's trained GPT and {len(ids):,} validation characters (a "
        "multiple of 64)",
        hint="cut ids into non-overlapping windows of 64 (x) with the next characters as "
        "targets (y = the same windows shifted by one; with n = (len(ids) - 1) // 64 "
        "windows every target exists); per-position cross-entropy (reduction='none'), mean "
        "over windows; return the mean of positions 0-7 minus the mean of positions 56-63.",
        strict=strict)
