"""The GPT decoder: causality, KV cache against full recomputation, weight tying, sizes,
the sampling filters and the errors for bad input."""

import math

import pytest
import torch
import torch.nn as nn

from fromscratch.models.gpt import GPT, GPTConfig, generate, sample_next, top_k_filter, top_p_filter
from fromscratch.models.transformer import Block

TINY = dict(vocab_size=37, block_size=24, n_layer=2, n_head=4, d_model=32)


def tiny(seed=0, **changes):
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY, **changes})).eval()


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_changing_a_later_token_leaves_earlier_logits_exactly_unchanged(positions):
    model = tiny(positions=positions)
    x = torch.randint(0, 37, (2, 16))
    with torch.no_grad():
        base = model(x)
        for t in (0, 5, 14):
            y = x.clone()
            y[:, t + 1] = (y[:, t + 1] + 1) % 37
            out = model(y)
            assert torch.equal(out[:, :t + 1], base[:, :t + 1])
            assert not torch.allclose(out[:, t + 1], base[:, t + 1])


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
@pytest.mark.parametrize("T,prefill", [(1, 1), (9, 1), (17, 6), (24, 23)])
def test_kv_cache_equals_full_recomputation(positions, T, prefill):
    model = tiny(positions=positions)
    x = torch.randint(0, 37, (3, T))
    with torch.no_grad():
        full = model(x)
        caches = model.new_caches()
        parts = [model(x[:, :prefill], caches=caches)]
        parts += [model(x[:, t:t + 1], caches=caches) for t in range(prefill, T)]
    assert len(caches[0]) == T
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


def test_kv_cache_in_chunks_and_full_cache_refuses_more():
    model = tiny()
    x = torch.randint(0, 37, (2, 24))
    with torch.no_grad():
        caches = model.new_caches()
        out = torch.cat([model(x[:, a:b], caches=caches) for a, b in [(0, 5), (5, 13), (13, 24)]], 1)
        torch.testing.assert_close(out, model(x), atol=1e-5, rtol=1e-5)
        with pytest.raises(ValueError, match="after 24 cached tokens exceed block_size=24"):
            model(x[:, :1], caches=caches)


@pytest.mark.parametrize("n_new", [10, 40])  # 40 runs past block_size=24
def test_greedy_is_identical_with_and_without_cache(n_new):
    model = tiny(seed=1)
    prompt = torch.randint(0, 37, (3, 4))
    a = generate(model, prompt, n_new, greedy=True, use_cache=True)
    b = generate(model, prompt, n_new, temperature=0, use_cache=False)
    assert a.shape == (3, 4 + n_new) and torch.equal(a[:, :4], prompt)
    assert torch.equal(a, b)


def test_sampling_with_the_same_generator_is_identical_with_and_without_cache():
    model = tiny(seed=2)
    prompt = torch.randint(0, 37, (7,))
    outs = [generate(model, prompt, 30, temperature=0.8, top_k=10, top_p=0.9,
                     generator=torch.Generator().manual_seed(3), use_cache=c) for c in (1, 0)]
    assert outs[0].shape == (37,) and torch.equal(outs[0], outs[1])


def test_generate_restores_training_mode_and_crops_a_long_prompt():
    model = tiny().train()
    out = generate(model, torch.randint(0, 37, (1, 30)), 3, greedy=True)  # prompt > 24
    assert model.training and out.shape == (1, 33)


def test_weight_tying_shares_one_tensor():
    tied, untied = tiny(), tiny(tie_weights=False)
    assert tied.head.weight is tied.tok_emb.weight
    assert untied.head.weight is not untied.tok_emb.weight
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(untied) - n(tied) == 37 * 32
    loss = tied(torch.randint(0, 37, (2, 8)), torch.randint(0, 37, (2, 8)))[1]
    loss.backward()
    assert tied.tok_emb.weight.grad is tied.head.weight.grad  # both uses add to one gradient


@pytest.mark.parametrize("changes", [{}, dict(bias=False), dict(tie_weights=False),
                                     dict(positions="sinusoidal", bias=False, n_layer=3)])
def test_parameter_count_formula(changes):
    config = GPTConfig(**{**TINY, **changes})
    model = GPT(config)
    assert sum(p.numel() for p in model.parameters()) == config.n_params()


def test_parameter_count_of_nanogpt_cpu_recipe_by_hand():
    # nanoGPT prints 0.80M for this model (it leaves the position embedding out): token
    # embedding 65 * 128, per layer 12 * 128^2 weights + 2 LayerNorm weights of 128, final
    # LayerNorm 128, read-out tied; plus our position embedding 64 * 128
    config = GPTConfig.nanogpt_cpu(65)
    by_hand = 65 * 128 + 4 * (12 * 128 * 128 + 2 * 128) + 128
    assert by_hand == 795_904
    assert config.n_params() == sum(p.numel() for p in GPT(config).parameters())
    assert config.n_params() == by_hand + 64 * 128


def test_gpt2_initialisation():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=500, n_layer=8, d_model=128, n_head=4, tie_weights=False))
    blk = model.blocks[0]
    assert abs(blk.linear1.weight.std().item() - 0.02) < 1e-3
    assert abs(blk.self_attn.in_proj_weight.std().item() - 0.02) < 1e-3
    assert abs(model.head.weight.std().item() - 0.02) < 1e-3
    for w in (blk.linear2.weight, blk.self_attn.out_proj.weight):
        assert abs(w.std().item() - 0.02 / math.sqrt(16)) < 2e-4
    assert torch.all(blk.linear1.bias == 0) and torch.all(blk.norm1.weight == 1)
    assert blk.activation == "gelu" and blk.causal and blk.norm_first


def test_initial_loss_is_near_uniform_guess():
    model = tiny()
    x = torch.randint(0, 37, (8, 24))
    _, loss = model(x, torch.roll(x, -1, 1))
    assert abs(loss.item() - math.log(37)) < 0.1


def test_targets_of_minus_one_are_ignored():
    model = tiny()
    x, y = torch.randint(0, 37, (2, 6)), torch.randint(0, 37, (2, 6))
    logits = model(x)
    y2 = y.clone()
    y2[:, 3:] = -1
    expected = nn.functional.cross_entropy(logits[:, :3].reshape(-1, 37), y[:, :3].reshape(-1))
    torch.testing.assert_close(model(x, y2)[1], expected)


def test_configs(monkeypatch):
    c = GPTConfig.nanogpt_cpu(65)
    assert (c.n_layer, c.n_head, c.d_model, c.block_size, c.dropout) == (4, 4, 128, 64, 0.0)
    monkeypatch.setenv("FROMSCRATCH_SCALE", "small")
    small = GPTConfig.default(100)
    assert small.vocab_size == 100 and small.n_params() < 300_000
    monkeypatch.setenv("FROMSCRATCH_SCALE", "large")
    large = GPTConfig.default(65, dropout=0.0)
    assert (large.n_layer, large.d_model, large.block_size, large.n_head) == (6, 384, 256, 6)
    with torch.device("meta"):  # builds the large model without allocating or training it
        model = GPT(large)
    assert sum(p.numel() for p in model.parameters()) == large.n_params()
    assert 10e6 < large.n_params() < 11e6
    with pytest.raises(ValueError, match="no field 'layers'"):
        GPTConfig.default(65, layers=3)


def test_large_model_runs_one_forward_pass(monkeypatch):
    monkeypatch.setenv("FROMSCRATCH_SCALE", "large")
    torch.manual_seed(0)
    model = GPT(GPTConfig.default(65)).eval()
    with torch.no_grad():
        assert model(torch.randint(0, 65, (1, 256))).shape == (1, 256, 65)


def test_block_without_bias_matches_pytorch():
    ref = nn.TransformerEncoderLayer(16, 4, 32, 0.0, batch_first=True, norm_first=True,
                                     bias=False).eval()
    ours = Block(16, 4, 32, bias=False).eval()
    ours.load_state_dict(ref.state_dict())  # strict: the same names, no LayerNorm biases
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


# --- the sampling filters -------------------------------------------------------------

def test_top_k_keeps_the_k_largest_and_k1_is_argmax():
    logits = torch.tensor([[1.0, 5.0, 3.0, -2.0, 4.0], [0.0, -1.0, 2.0, 7.0, 1.0]])
    kept = top_k_filter(logits, 2)
    assert torch.equal(torch.isfinite(kept), torch.tensor([[0, 1, 0, 0, 1], [0, 0, 1, 1, 0]]).bool())
    assert torch.equal(kept[torch.isfinite(kept)], logits[torch.isfinite(kept)])
    one = top_k_filter(logits, 1)
    assert torch.equal(one.argmax(-1), logits.argmax(-1))
    assert torch.isfinite(one).sum(-1).tolist() == [1, 1]
    assert torch.equal(top_k_filter(logits, 5), logits)
    assert torch.equal(top_k_filter(logits, 99), logits)


def test_top_k_keeps_every_logit_tied_with_the_kth():
    kept = top_k_filter(torch.tensor([3.0, 2.0, 2.0, 2.0, 1.0]), 2)
    assert torch.isfinite(kept).tolist() == [True, True, True, True, False]


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([0.5, 0.05, 0.3, 0.15])
    logits = probs.log()
    for p, expected in [(0.4, {0}), (0.49, {0}), (0.51, {0, 2}), (0.79, {0, 2}),
                        (0.81, {0, 2, 3}), (0.96, {0, 1, 2, 3})]:
        kept = top_p_filter(logits, p)
        ids = set(torch.isfinite(kept).nonzero().flatten().tolist())
        assert ids == expected, (p, ids)
        mass = probs[list(ids)].sum()
        assert mass >= p - 1e-6
        assert mass - probs[list(ids)].min() < p  # dropping the least likely falls short
        # what is kept renormalises to the original probabilities' ratios
        torch.testing.assert_close(kept.softmax(-1)[list(ids)], probs[list(ids)] / mass)


def test_top_p_edge_cases():
    logits = torch.randn(4, 50)
    assert torch.equal(top_p_filter(logits, 1.0), logits)
    tiny_p = top_p_filter(logits, 1e-6)  # only the most likely token survives
    assert torch.equal(tiny_p.argmax(-1), logits.argmax(-1))
    assert (torch.isfinite(tiny_p).sum(-1) == 1).all()
    tied = top_p_filter(torch.zeros(1, 4), 0.3)  # uniform: 0.25 each, all tied
    assert torch.isfinite(tied).all()
    both = top_p_filter(top_k_filter(logits, 5), 0.999)  # -inf from top-k stays out
    assert (torch.isfinite(both).sum(-1) <= 5).all()


@pytest.mark.parametrize("k", [0, -1, 2.5, True, None])
def test_top_k_bad_values_raise(k):
    with pytest.raises(ValueError, match="top_k must be an int >= 1"):
        top_k_filter(torch.zeros(3), k)


@pytest.mark.parametrize("p", [0, -0.1, 1.5, float("nan"), "0.5"])
def test_top_p_bad_values_raise(p):
    with pytest.raises(ValueError, match=r"top_p must be a number in \(0, 1\]"):
        top_p_filter(torch.zeros(3), p)


def test_sample_next_temperature():
    logits = torch.tensor([[0.0, 1.0, 3.0]]).repeat(2000, 1)
    g = torch.Generator().manual_seed(0)
    assert (sample_next(logits, 0) == 2).all()
    cold = sample_next(logits, 0.1, generator=g)
    hot = sample_next(logits, 100.0, generator=g)
    assert (cold == 2).float().mean() > 0.99
    assert abs((hot == 0).float().mean().item() - 1 / 3) < 0.05
    assert (sample_next(logits, 1.0, top_k=1, generator=g) == 2).all()
    with pytest.raises(ValueError, match="temperature must be a number >= 0"):
        sample_next(logits, -1.0)


# --- bad input ------------------------------------------------------------------------

def test_bad_input_messages():
    model = tiny()
    with pytest.raises(ValueError, match="exceed block_size=24"):
        model(torch.zeros(1, 25, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 37\), got ids from 0 to 37"):
        model(torch.tensor([[0, 37]]))
    with pytest.raises(ValueError, match="got ids from -1"):
        model(torch.tensor([[-1, 3]]))
    with pytest.raises(ValueError, match=r"shape \(batch, time\)"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(batch, time\)"):
        model(torch.zeros(1, 5))  # floats are not ids
    with pytest.raises(ValueError, match="targets must have the shape"):
        model(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="expected 2 caches"):
        model(torch.zeros(1, 2, dtype=torch.long), caches=model.new_caches()[:1])
    with pytest.raises(ValueError, match="non-empty prompt"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="top_p"):
        generate(model, torch.zeros(1, 2, dtype=torch.long), 3, top_p=2.0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, torch.zeros(1, 2, dtype=torch.long), -1)
    with pytest.raises(ValueError, match="not divisible"):
        GPTConfig(d_model=30, n_head=4)
    with pytest.raises(ValueError, match="positions must be one of"):
        GPTConfig(positions="rotary")


def test_lm_recipe_warms_up_then_decays_to_min_lr():
    from fromscratch.models.gpt import LMRecipe

    r = LMRecipe(lr=1e-3, min_lr=1e-4, warmup=10)
    assert r.lr_at(0, 0.0) == pytest.approx(1e-4) and r.lr_at(9, 0.1) == pytest.approx(1e-3)
    assert r.lr_at(10, 0.0) == pytest.approx(1e-3)
    assert r.lr_at(500, 0.5) == pytest.approx(5.5e-4) and r.lr_at(900, 1.0) == pytest.approx(1e-4)


def test_random_windows_are_inputs_and_next_token_targets():
    from fromscratch.models.gpt import random_windows

    ids = torch.arange(100)
    x, y = random_windows(ids, 8, 5, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 8) and torch.equal(y, x + 1)
    with pytest.raises(ValueError, match="more than block"):
        random_windows(torch.arange(8), 8, 2, torch.Generator())


def test_train_lm_learns_a_repetitive_text_and_checks_its_budget():
    from fromscratch.models.gpt import LMRecipe, lm_loss, train_lm

    torch.manual_seed(0)
    ids = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7] * 60)
    model = GPT(GPTConfig(vocab_size=8, block_size=16, n_layer=1, n_head=2, d_model=32))
    before = lm_loss(model, ids)
    assert before == pytest.approx(math.log(8), abs=0.1)  # an untrained model guesses
    recipe = LMRecipe(batch_size=16, lr=3e-3, warmup=5)
    run = train_lm(model, ids, recipe, steps=60, val_ids=ids, eval_at=(0, 60))
    assert run.steps == 60 and len(run.train_loss) == 60 and run.seconds > 0
    assert [e[1] for e in run.evals] == [0, 60]
    assert run.evals[-1][2] < 0.5 * before  # the cycle is learned
    timed = train_lm(model, ids, seconds=0.2)
    assert timed.seconds >= 0.2 and timed.steps >= 1
    with pytest.raises(ValueError, match="exactly one budget"):
        train_lm(model, ids, steps=5, seconds=1.0)
    with pytest.raises(ValueError, match="eval_at needs val_ids"):
        train_lm(model, ids, steps=5, eval_at=(5,))


def test_train_lm_shows_progress_unless_switched_off(capsys, monkeypatch):
    """Chapter 4's training cell runs for most of a minute: a learner sees a bar (steps and
    the last loss); the notebook builds and tests (FROMSCRATCH_PROGRESS=0) store none."""
    import tqdm.auto
    import tqdm.std

    from fromscratch.models.gpt import LMRecipe, train_lm

    ids = torch.tensor([0, 1, 2, 3] * 40)
    model = GPT(GPTConfig(vocab_size=4, block_size=8, n_layer=1, n_head=1, d_model=16))
    recipe = LMRecipe(batch_size=4, warmup=1)

    class Eager(tqdm.std.tqdm):  # a bar that draws every step (these steps are fast)
        def __init__(self, *args, **kwargs):
            super().__init__(*args, mininterval=0, miniters=1, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", Eager)
    monkeypatch.setenv("FROMSCRATCH_PROGRESS", "1")
    train_lm(model, ids, recipe, steps=7, desc="GPT")
    bar = capsys.readouterr().err
    assert "GPT" in bar and "7/7" in bar and "loss=" in bar, bar
    train_lm(model, ids, recipe, seconds=0.05, desc="timed")
    assert "timed" in capsys.readouterr().err
    monkeypatch.setenv("FROMSCRATCH_PROGRESS", "0")
    train_lm(model, ids, recipe, steps=7)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("FROMSCRATCH_PROGRESS", "1")
    train_lm(model, ids, recipe, steps=7, progress=False)
    assert capsys.readouterr().err == ""
