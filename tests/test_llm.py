"""The LLM chapter's package code: preference learning, power-law fits, the fused path,
attention-only blocks, in-context copying data and its checks."""

import math

import pytest
import torch
import torch.nn.functional as F

from fromscratch.data import repeated_tokens
from fromscratch.models import gpt, preference, rnn
from fromscratch.models import transformer as tr
from fromscratch.models.gpt import GPT, GPTConfig, LMRecipe


def test_fused_and_explicit_paths_give_the_same_logits():
    torch.manual_seed(0)
    fused = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=2, d_model=32, fused=True))
    plain = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=2, d_model=32, fused=False))
    plain.load_state_dict(fused.state_dict())
    x = torch.randint(0, 30, (3, 16))
    assert torch.allclose(fused(x), plain(x), atol=1e-5)
    caches = fused.new_caches()
    steps = torch.cat([fused(x[:, t:t + 1], caches=caches) for t in range(16)], dim=1)
    assert torch.allclose(steps, plain(x), atol=1e-5)


def test_fused_layer_norm_equals_the_explicit_formula():
    x = torch.randn(4, 7, 12)
    a, b = tr.LayerNorm(12, fused=True), tr.LayerNorm(12)
    with torch.no_grad():
        a.weight.uniform_(0.5, 1.5)
        a.bias.normal_()
    b.load_state_dict(a.state_dict())
    assert torch.allclose(a(x), b(x), atol=1e-5)


def test_attention_only_blocks_have_no_feed_forward_and_count_right():
    config = GPTConfig(vocab_size=20, block_size=8, n_layer=2, d_model=16, mlp=False)
    model = GPT(config)
    assert not any("linear1" in n for n, _ in model.named_parameters())
    assert sum(p.numel() for p in model.parameters()) == config.n_params()
    maps = model.attention_maps(torch.randint(0, 20, (2, 8)))
    assert len(maps) == 2 and maps[0].shape == (2, 4, 8, 8)
    assert torch.allclose(maps[1].sum(-1), torch.ones(2, 4, 8))
    assert (maps[0].triu(1) == 0).all()  # causal
    with pytest.raises(ValueError, match="d_ff"):
        tr.Block(16, 4, d_ff=-1)
    with pytest.raises(ValueError, match="activation"):
        GPTConfig(activation="tanh")


def test_train_lm_trains_the_rnn_chapters_lstm_too():
    torch.manual_seed(0)
    ids = torch.arange(2000) % 7  # a periodic text: easy to learn
    lstm = rnn.CharModel("lstm", 7, rnn.RNNConfig(embed=8, hidden=16), fused=True)
    before = gpt.lm_loss(lstm, ids, block=16)
    gpt.train_lm(lstm, ids, LMRecipe(lr=1e-2, batch_size=8, warmup=5), steps=60, block=16)
    assert gpt.lm_loss(lstm, ids, block=16) < 0.5 * before
    with pytest.raises(ValueError, match="block"):
        gpt.lm_loss(lstm, ids)
    with pytest.raises(ValueError, match="precision"):
        LMRecipe(precision="float16")


def test_fit_power_law_recovers_a_known_law():
    x = [10.0, 100.0, 1000.0, 10000.0]
    y = [5.0 * v ** -0.3 for v in x]
    slope, intercept = gpt.fit_power_law(x, y)
    assert math.isclose(slope, -0.3, abs_tol=1e-9) and math.isclose(math.exp(intercept), 5.0)
    with pytest.raises(ValueError, match="positive"):
        gpt.fit_power_law([1.0, 0.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="length"):
        gpt.fit_power_law([1.0], [1.0])


def test_search_table_is_shipped_and_names_its_baselines():
    table = gpt.load_search_table()
    names = [row["name"] for row in table["runs"]]
    assert "nanogpt" in names and "LSTM, hidden 256" in names
    assert [row["order"] for row in table["ngram"]] == [8, 16, 32, 64]
    for row in table["runs"]:
        times = [s for s, _, _ in row["val_loss_at"]][:3]
        assert all(abs(a - b) < 0.5 for a, b in zip(times, [10, 27, 40])), times


def test_repeated_tokens_marks_both_copies():
    X, first, second = repeated_tokens(50, length=32, vocab=64, min_copy=10, max_copy=15,
                                       seed=3)
    for i in range(50):
        f, s = first[i].nonzero().flatten(), second[i].nonzero().flatten()
        length = int(s[0] - f[0])
        assert 10 <= length <= 15 and len(f) == len(s) == length - 1
        assert torch.equal(X[i, f[0]:f[0] + length], X[i, s[0]:s[0] + length])
    with pytest.raises(ValueError, match="length"):
        repeated_tokens(5, length=20, min_copy=10, max_copy=15)


def test_copy_losses_prefer_a_model_that_copies():
    X, first, second = repeated_tokens(40, length=32, vocab=16, min_copy=6, max_copy=8)

    class Oracle(torch.nn.Module):
        """Knows the answer on the second copy, guesses uniformly elsewhere."""

        def forward(self, x):
            logits = torch.zeros(*x.shape, 16)
            full = X[:, 1:x.shape[1] + 1]
            logits[second[:, :-1]] = 20 * F.one_hot(full[second[:, :-1]], 16).float()
            return logits

    a, b = gpt.copy_losses(Oracle(), X, first, second)
    assert math.isclose(a, math.log(16), rel_tol=1e-5) and b < 1e-3


def test_closes_brackets():
    good = ["f(x[0])", "a {b} c", "(1)", "x = (a, [b, {c}])"]
    bad = ["f(x", "x)", "(]", "no brackets", ")(", "([)]"]
    assert all(preference.closes_brackets(t) for t in good)
    assert not any(preference.closes_brackets(t) for t in bad)
    with pytest.raises(TypeError):
        preference.closes_brackets(3)


def test_dpo_loss_values_and_errors():
    w, l = torch.tensor([-10.0]), torch.tensor([-12.0])
    ref = torch.tensor([-11.0])
    loss = preference.dpo_loss(w, l, ref, ref, beta=0.5)
    assert math.isclose(loss.item(), -F.logsigmoid(torch.tensor(1.0)).item(), rel_tol=1e-6)
    assert math.isclose(preference.dpo_loss(w, w, ref, ref).item(), math.log(2), rel_tol=1e-6)
    with pytest.raises(ValueError, match="beta"):
        preference.dpo_loss(w, l, ref, ref, beta=0.0)
    with pytest.raises(ValueError, match="shape"):
        preference.dpo_loss(w, torch.zeros(2), ref, ref)


def test_completion_logprob_sums_the_completion_tokens():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=10, block_size=12, n_layer=1, d_model=16))
    prompt, completion = torch.randint(0, 10, (2, 5)), torch.randint(0, 10, (2, 4))
    ids = torch.cat([prompt, completion], 1)
    logp = model(ids).log_softmax(-1)
    manual = sum(logp[:, 4 + j].gather(-1, completion[:, j:j + 1]).squeeze(-1)
                 for j in range(4))
    assert torch.allclose(preference.completion_logprob(model, prompt, completion), manual,
                          atol=1e-5)


def test_dpo_moves_probability_towards_the_chosen_completions():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=10, block_size=12, n_layer=1, d_model=16))
    reference = GPT(model.config)
    reference.load_state_dict(model.state_dict())
    prompts = torch.randint(0, 10, (16, 4))
    chosen, rejected = torch.full((16, 3), 1), torch.full((16, 3), 2)
    losses = preference.train_dpo(model, reference, prompts, chosen, rejected, steps=30,
                                  lr=3e-3, batch_size=8)
    assert losses[0] == pytest.approx(math.log(2), rel=1e-5) and losses[-1] < 0.5
    margin = (preference.completion_logprob(model, prompts, chosen)
              - preference.completion_logprob(model, prompts, rejected)).mean()
    assert margin > 0


def test_best_of_n_and_pairs():
    hits = torch.tensor([[True, False], [False, False], [False, True]])
    assert preference.best_of_n_rate(hits, 1) == pytest.approx(1 / 3)
    assert preference.best_of_n_rate(hits, 2) == pytest.approx(2 / 3)
    rows, good, bad = preference.preference_pairs(hits)
    assert rows.tolist() == [0, 2] and good.tolist() == [0, 1] and bad.tolist() == [1, 0]
    assert preference.preference_pairs(torch.zeros(2, 2, dtype=torch.bool)) is None
    with pytest.raises(ValueError):
        preference.best_of_n_rate(hits, 3)
