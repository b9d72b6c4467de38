"""The recurrent cells against nn.RNN / nn.LSTM / nn.GRU with copied weights."""

import pytest
import torch
import torch.nn as nn

from fromscratch.data import remember_first
from fromscratch.models import rnn
from fromscratch.models.ngram import NGramModel

TORCH = {"rnn": (nn.RNN, nn.RNNCell), "lstm": (nn.LSTM, nn.LSTMCell), "gru": (nn.GRU, nn.GRUCell)}


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("B,T,I,H", [(3, 11, 5, 7), (1, 1, 2, 3), (4, 30, 8, 16)])
def test_sequence_equals_pytorch(kind, B, T, I, H):
    ref = TORCH[kind][0](I, H, batch_first=True)
    ours = rnn.Recurrent(rnn.copy_from_torch(rnn.make_cell(kind, I, H), ref))
    x = torch.randn(B, T, I)
    out, state = ours(x)
    ref_out, ref_state = ref(x)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    if kind == "lstm":
        torch.testing.assert_close(state[0], ref_state[0][0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(state[1], ref_state[1][0], atol=1e-5, rtol=1e-5)
    else:
        torch.testing.assert_close(state, ref_state[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cell_equals_pytorch_cell_and_gradients_match(kind):
    ref = TORCH[kind][1](4, 6)
    ours = rnn.copy_from_torch(rnn.make_cell(kind, 4, 6), ref)
    x = torch.randn(5, 4)
    h0 = torch.randn(5, 6)
    if kind == "lstm":
        state = (h0, torch.randn(5, 6))
        out, ref_out = ours(x, state)[0], ref(x, state)[0]
    else:
        out, ref_out = ours(x, h0), ref(x, h0)
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=1e-5)
    out.sum().backward()
    ref_out.sum().backward()
    torch.testing.assert_close(ours.weight_hh.grad, ref.weight_hh.grad, atol=1e-5, rtol=1e-5)


def test_copy_from_mismatched_module_says_what_is_wrong():
    with pytest.raises(ValueError, match="weight_ih"):
        rnn.copy_from_torch(rnn.LSTMCell(3, 4), nn.GRU(3, 4))


def test_unknown_cell_kind():
    with pytest.raises(ValueError, match="unknown cell kind"):
        rnn.make_cell("transformer", 2, 2)


def _classifier(kind, keep_bias=None, hidden=16):
    torch.manual_seed(0)
    return rnn.SequenceClassifier(kind, 8, 4, rnn.RNNConfig(embed=8, hidden=hidden),
                                  keep_bias=keep_bias)


def test_gradient_norms_vanish_faster_in_plain_rnn():
    X, y = remember_first(16, 40, seed=0)
    plain = rnn.gradient_norm_vs_distance(_classifier("rnn"), X, y)
    assert plain.shape == (40,)
    gated = rnn.gradient_norm_vs_distance(_classifier("lstm", keep_bias=3.0), X, y)
    assert gated[-1] > 100 * plain[-1]


def test_gradient_at_distance_0_is_the_task_losss_gradient():
    model = _classifier("gru")
    X, y = remember_first(5, 7, seed=1)
    norms = rnn.gradient_norm_vs_distance(model, X, y)
    h_last = model.rnn(model.embed(X))[0][:, -1].detach().requires_grad_()
    loss = nn.functional.cross_entropy(model.out(h_last), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, h_last)
    torch.testing.assert_close(norms[0], grad.norm(dim=1).mean())
    assert all(p.grad is None for p in model.parameters())  # leaves the model clean


def test_gradient_explodes_with_a_large_recurrent_gain():
    X, y = remember_first(16, 30, seed=0)
    model = _classifier("rnn", hidden=32)
    with torch.no_grad():
        nn.init.orthogonal_(model.rnn.cell.weight_hh, gain=3.0)
    norms = rnn.gradient_norm_vs_distance(model, X, y)
    assert norms[-1] > 100 * norms[0]
    with pytest.raises(ValueError, match="targets"):
        rnn.gradient_norm_vs_distance(model, X, y[:3])


def test_keep_bias_sets_the_right_gate():
    m = rnn.SequenceClassifier("gru", 8, 4, rnn.RNNConfig(embed=4, hidden=5), keep_bias=3.0)
    assert torch.all(m.rnn.cell.bias_ih[5:10] == 3.0)
    m = rnn.SequenceClassifier("lstm", 8, 4, rnn.RNNConfig(embed=4, hidden=5), keep_bias=2.0)
    assert torch.all(m.rnn.cell.bias_ih[5:10] == 2.0)
    with pytest.raises(ValueError, match="no gate"):
        rnn.SequenceClassifier("rnn", 8, 4, keep_bias=1.0)


@pytest.mark.parametrize("kind,torch_cls,gate", [("lstm", nn.LSTMCell, "forget"),
                                                  ("gru", nn.GRUCell, "update")])
def test_init_keep_gate_opens_the_gate_that_keeps_the_state(kind, torch_cls, gate):
    """Setting block 1 must make PyTorch's own cell keep its state: with zero input
    weights, a state of ones decays by sigmoid(value) per step (LSTM cell, GRU h)."""
    ref = torch_cls(3, 4)
    cell = rnn.copy_from_torch(rnn.make_cell(kind, 3, 4), ref)
    rnn.init_keep_gate(cell, 3.0)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, name).copy_(getattr(cell, name))
        for w in (ref.weight_ih, ref.weight_hh):
            w.zero_()
        if kind == "lstm":
            ref.bias_ih[:4].fill_(-30.0)  # input gate shut: nothing new is written
        else:
            ref.bias_ih[8:].zero_(), ref.bias_hh[8:].zero_()  # candidate n = tanh(0) = 0
        x, ones = torch.zeros(1, 3), torch.ones(1, 4)
        kept = ref(x, (ones, ones))[1] if kind == "lstm" else ref(x, ones)
    expected = torch.sigmoid(torch.tensor(3.0))
    torch.testing.assert_close(kept, torch.full((1, 4), expected.item()), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="no gate"):
        rnn.init_keep_gate(rnn.RNNCell(2, 2), 1.0)


def test_dropout_is_active_in_training_mode_only():
    model = rnn.CharModel("lstm", 6, rnn.RNNConfig(embed=4, hidden=8, dropout=0.5))
    x = torch.randint(0, 6, (2, 9))
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_ngram_counts_and_smoothing_by_hand():
    ids = torch.tensor([0, 1, 0, 1, 0, 2])
    m = NGramModel(vocab_size=3, max_order=2).fit(ids)
    X, Y = torch.tensor([[0, 1]]), torch.tensor([[1, 2]])
    lp = m.log_probs(X, Y, order=2, alpha=1.0).exp()[0]
    uni1 = (2 + 1 / 3) / (6 + 1)  # P_0(1): 2 of 6 counts, smoothed towards uniform
    assert lp[0].item() == pytest.approx((2 + uni1) / (3 + 1))  # after "0": "1" twice of 3
    uni2 = (1 + 1 / 3) / (6 + 1)
    assert lp[1].item() == pytest.approx((0 + uni2) / (2 + 1))  # "2" never followed "1"
    # order 1 ignores the context; every probability distribution sums to one
    lp1 = m.log_probs(X, Y, order=1, alpha=1.0).exp()[0]
    assert lp1[0].item() == pytest.approx(uni1)
    probs = [m.log_probs(X, torch.tensor([[c, c]]), 2, 0.5).exp()[0] for c in range(3)]
    torch.testing.assert_close(sum(probs), torch.ones(2, dtype=torch.float64))


def test_ngram_uses_only_the_windows_own_context_and_tunes():
    text = torch.tensor([0, 1, 2] * 30)
    m = NGramModel(3, max_order=4).fit(text)
    X, Y = text[:-1].reshape(-1, 1)[:5], text[1:].reshape(-1, 1)[:5]
    # windows of 1: at most one symbol of context, so orders 2..4 agree
    assert m.perplexity(X, Y, 2, 1.0) == pytest.approx(m.perplexity(X, Y, 4, 1.0))
    scores = m.tune(X, Y, orders=(1, 2), alphas=(0.1, 1.0))
    assert min(scores, key=scores.get) == (2, 0.1) and len(scores) == 4
    with pytest.raises(ValueError, match="order"):
        m.log_probs(X, Y, order=5, alpha=1.0)


def test_generate_is_reproducible_and_validates():
    model = rnn.CharModel("gru", 10, rnn.RNNConfig(embed=4, hidden=8))
    prompt = torch.tensor([1, 2, 3])
    a = rnn.generate(model, prompt, 20, generator=torch.Generator().manual_seed(1))
    b = rnn.generate(model, prompt, 20, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (20,) and int(a.max()) < 10
    with pytest.raises(ValueError, match="temperature"):
        rnn.generate(model, prompt, 5, temperature=0)


def test_empty_sequences_float64_and_train_mode():
    with pytest.raises(ValueError, match="empty"):
        rnn.Recurrent(rnn.GRUCell(2, 3))(torch.zeros(1, 0, 2))
    cell = rnn.LSTMCell(2, 3).double()
    out, _ = rnn.Recurrent(cell)(torch.zeros(1, 4, 2, dtype=torch.float64))
    assert out.dtype == torch.float64
    model = rnn.CharModel("rnn", 5, rnn.RNNConfig(embed=2, hidden=3)).train()
    rnn.generate(model, torch.tensor([1]), 3)
    assert model.training


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_fused_char_model_computes_what_ours_does(kind):
    torch.manual_seed(0)
    fused = rnn.CharModel(kind, 11, rnn.RNNConfig(embed=6, hidden=8), fused=True).eval()
    ours = rnn.CharModel(kind, 11, rnn.RNNConfig(embed=6, hidden=8)).eval()
    ours.embed.load_state_dict(fused.embed.state_dict())
    ours.out.load_state_dict(fused.out.state_dict())
    rnn.copy_from_torch(ours.rnn.cell, fused.rnn)
    tokens = torch.randint(0, 11, (3, 9))
    with torch.no_grad():
        assert torch.allclose(fused(tokens), ours(tokens), atol=1e-5)
    with pytest.raises(ValueError, match="unknown cell kind"):
        rnn.CharModel("transformer", 11, fused=True)
