"""The Transformer's pieces equal PyTorch's, and the chapter's tasks are what they claim."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fromscratch.data import count_task, reverse_task, sort_task, two_relations
from fromscratch.models import transformer as tr


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("shape", [(5, 8), (2, 5, 8), (2, 3, 5, 8)])
def test_attention_equals_pytorch_without_and_with_causal_mask(shape):
    q, k, v = torch.randn(*shape), torch.randn(*shape), torch.randn(*shape[:-1], 4)
    out, w = tr.attention(q, k, v)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-6)
    assert torch.allclose(w.sum(-1), torch.ones(shape[:-1]), atol=1e-6)
    out, w = tr.attention(q, k, v, causal=True)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, is_causal=True),
                          atol=1e-6)
    assert (w.triu(1) == 0).all()


def test_padding_mask_zeroes_padded_keys_and_equals_pytorch():
    q, k, v = torch.randn(3, 2, 6, 8), torch.randn(3, 2, 6, 8), torch.randn(3, 2, 6, 8)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[1, 3:] = True
    out, w = tr.attention(q, k, v, key_padding_mask=pad)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=~pad[:, None, None, :])
    assert torch.allclose(out, ref, atol=1e-6)
    assert w[1, :, :, 3:].abs().max() == 0


def test_causal_mask_with_cached_keys_lets_queries_see_up_to_their_position():
    mask = tr.causal_mask(2, 5)  # the last two of five positions
    assert mask.tolist() == [[True, True, True, True, False], [True] * 5]
    with pytest.raises(ValueError, match="at least as many keys"):
        tr.causal_mask(3, 2)


def test_attention_refuses_bad_input_with_clear_messages():
    q = torch.randn(1, 4, 8)
    with pytest.raises(ValueError, match="need q"):
        tr.attention(q, torch.randn(1, 4, 6), torch.randn(1, 4, 6))
    with pytest.raises(ValueError, match="True for padding"):
        tr.attention(q, q, q, key_padding_mask=torch.zeros(1, 4))
    with pytest.raises(ValueError, match="every key masked"):
        tr.attention(q, q, q, key_padding_mask=torch.ones(1, 4, dtype=torch.bool))


def test_multi_head_attention_equals_nn_multiheadattention_with_copied_weights():
    ref = nn.MultiheadAttention(24, 6, batch_first=True)
    ours = tr.MultiHeadAttention(24, 6)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 9, 24)
    pad = torch.zeros(2, 9, dtype=torch.bool)
    pad[0, 7:] = True
    future = torch.ones(9, 9, dtype=torch.bool).triu(1)
    with torch.no_grad():
        r_out, r_w = ref(x, x, x, key_padding_mask=pad, average_attn_weights=False)
        o_out, o_w = ours(x, key_padding_mask=pad, need_weights=True)
        assert torch.allclose(o_out, r_out, atol=1e-5) and torch.allclose(o_w, r_w, atol=1e-6)
        r_causal = ref(x, x, x, attn_mask=future, need_weights=False)[0]
        assert torch.allclose(ours(x, causal=True), r_causal, atol=1e-5)
        context = torch.randn(2, 4, 24)  # cross-attention: keys and values from context
        assert torch.allclose(ours(x, context=context),
                              ref(x, context, context, need_weights=False)[0], atol=1e-5)


def test_head_mask_removes_exactly_one_head():
    mha = tr.MultiHeadAttention(8, 2)
    x = torch.randn(1, 5, 8)
    with torch.no_grad():
        full = mha(x)
        keep0 = mha(x, head_mask=torch.tensor([1.0, 0.0]))
        keep1 = mha(x, head_mask=torch.tensor([0.0, 1.0]))
        bias = mha.out_proj.bias
        assert torch.allclose(keep0 + keep1 - bias, full, atol=1e-6)  # linear in the heads
    with pytest.raises(ValueError, match="head_mask must have shape"):
        mha(x, head_mask=torch.ones(3))


def test_kv_cache_decoding_equals_full_causal_attention():
    mha = tr.MultiHeadAttention(16, 4)
    x = torch.randn(2, 7, 16)
    with torch.no_grad():
        full = mha(x, causal=True)
        cache = tr.KVCache()
        first = mha(x[:, :3], causal=True, cache=cache)  # a prompt of 3, then one at a time
        steps = [mha(x[:, t:t + 1], causal=True, cache=cache) for t in range(3, 7)]
    assert len(cache) == 7
    assert torch.allclose(torch.cat([first, *steps], dim=1), full, atol=1e-5)


def test_multi_head_attention_refuses_bad_sizes():
    with pytest.raises(ValueError, match="not divisible"):
        tr.MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="expected x of shape"):
        tr.MultiHeadAttention(8, 2)(torch.randn(3, 8))


def test_layer_norm_equals_pytorch():
    ref = nn.LayerNorm(12)
    nn.init.normal_(ref.weight), nn.init.normal_(ref.bias)
    ours = tr.LayerNorm(12)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(4, 5, 12) * 3 + 1
    assert torch.allclose(ours(x), ref(x), atol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_block_equals_transformer_encoder_layer(norm_first, activation):
    ref = nn.TransformerEncoderLayer(16, 4, 40, dropout=0.0, activation=activation,
                                     batch_first=True, norm_first=norm_first).eval()
    ours = tr.Block(16, 4, 40, norm_first=norm_first, activation=activation).eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 6, 16)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[2, 4:] = True
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-5)
        out, expected = ours(x, key_padding_mask=pad), ref(x, src_key_padding_mask=pad)
        real = ~pad  # PyTorch's fast path may leave padded positions' outputs undefined
        assert torch.allclose(out[real], expected[real], atol=1e-5)
    with pytest.raises(ValueError, match="activation"):
        tr.Block(16, 4, activation="tanh")


def test_causal_block_output_at_t_ignores_later_tokens():
    block = tr.Block(16, 4, causal=True).eval()
    x = torch.randn(1, 8, 16)
    y = x.clone()
    y[:, 5:] += 1.0
    with torch.no_grad():
        assert torch.equal(block(x)[:, :5], block(y)[:, :5])


def test_sinusoidal_positions_match_the_formula_and_shift_by_a_rotation():
    pe = tr.sinusoidal_positions(50, 16)
    for p in (0, 7, 49):
        for i in range(8):
            angle = p / 10000 ** (2 * i / 16)
            assert math.isclose(pe[p, 2 * i].item(), math.sin(angle), abs_tol=1e-5)
            assert math.isclose(pe[p, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-5)
    # the dot product of two positions depends only on their distance
    assert torch.allclose(pe[3] @ pe[10], pe[20] @ pe[27], atol=1e-4)
    with pytest.raises(ValueError, match="even d_model"):
        tr.sinusoidal_positions(10, 7)


@pytest.mark.parametrize("positions", ["none", "learned", "sinusoidal"])
def test_token_transformer_is_permutation_equivariant_only_without_positions(positions):
    config = tr.TransformerConfig(d_model=16, n_heads=2, n_layers=2, max_len=10,
                                  positions=positions)
    model = tr.TokenTransformer(7, 3, config).eval()
    if positions == "learned":
        nn.init.normal_(model.pos)  # visible positions, as after training
    tokens = torch.randint(0, 7, (3, 10))
    perm = torch.randperm(10)
    with torch.no_grad():
        diff = (model(tokens[:, perm]) - model(tokens)[:, perm]).abs().max().item()
    assert (diff < 1e-5) == (positions == "none"), diff


def test_token_transformer_attention_maps_and_head_mask_and_errors():
    config = tr.TransformerConfig(d_model=16, n_heads=2, n_layers=3, max_len=6)
    model = tr.TokenTransformer(5, 4, config)
    tokens = torch.randint(0, 5, (2, 6))
    maps = model.attention_maps(tokens)
    assert len(maps) == 3 and maps[0].shape == (2, 2, 6, 6)
    assert model.training  # attention_maps restores the mode
    out = model(tokens, head_mask=torch.ones(3, 2))
    assert torch.allclose(out, model(tokens))
    with pytest.raises(ValueError, match="longer than max_len"):
        model(torch.zeros(1, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="batch, time"):
        model(torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="positions must be one of"):
        tr.TokenTransformer(5, 4, tr.TransformerConfig(positions="rotary"))


def test_config_default_follows_the_scale_switch(monkeypatch):
    monkeypatch.setenv("FROMSCRATCH_SCALE", "large")
    large = tr.TransformerConfig.default()
    assert (large.d_model, large.n_layers, large.max_len) == (384, 6, 256)
    model = tr.TokenTransformer(100, 100, large)
    assert sum(p.numel() for p in model.parameters()) > 10_000_000
    monkeypatch.setenv("FROMSCRATCH_SCALE", "small")
    assert tr.TransformerConfig.default(n_layers=1).n_layers == 1
    with pytest.raises(ValueError, match="no field"):
        tr.TransformerConfig.default(width=3)


def test_tasks_are_what_they_claim():
    X, Y = reverse_task(50, 10, 20, seed=1)
    assert (X.sort(1).values[:, 1:] != X.sort(1).values[:, :-1]).all()  # distinct tokens
    assert torch.equal(Y, X.flip(1))
    X, Y = count_task(50, 10, 5, seed=1)
    for row, counts in zip(X.tolist(), Y.tolist()):
        assert counts == [row.count(t) for t in row]
    X, Y = two_relations(20, 12, 16, seed=1)
    assert (Y[:, 0, 0] == -100).all() and torch.equal(Y[:, 1:, 0], X[:, :-1])
    assert torch.equal(Y[:, :, 1], X[:, :1].expand(20, 12))
    X, Y = sort_task(20, 8, 10, seed=1)
    assert torch.equal(Y, X.sort(1).values)
    assert torch.equal(reverse_task(5, seed=3)[0], reverse_task(5, seed=3)[0])
    with pytest.raises(ValueError, match="distinct tokens need vocab"):
        reverse_task(5, 10, 8)
    with pytest.raises(ValueError, match="need n >= 1"):
        count_task(0)
