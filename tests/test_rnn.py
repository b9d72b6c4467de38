"""The recurrent cells against nn.RNN / nn.LSTM / nn.GRU with copied weights."""

import pytest
import torch
import torch.nn as nn

from fromscratch.models import rnn

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


def test_gradient_norms_vanish_faster_in_plain_rnn():
    torch.manual_seed(0)
    x = torch.randn(8, 40, 16)
    plain = rnn.gradient_norm_vs_distance(rnn.RNNCell(16, 16), x)
    assert plain.shape == (40,)
    lstm = rnn.LSTMCell(16, 16)
    with torch.no_grad():
        lstm.bias_ih[16:32].fill_(3.0)
    gated = rnn.gradient_norm_vs_distance(lstm, x)
    assert gated[-1] > 100 * plain[-1]


def test_keep_bias_sets_the_right_gate():
    m = rnn.SequenceClassifier("gru", 8, 4, rnn.RNNConfig(embed=4, hidden=5), keep_bias=3.0)
    assert torch.all(m.rnn.cell.bias_ih[5:10] == 3.0)
    m = rnn.SequenceClassifier("lstm", 8, 4, rnn.RNNConfig(embed=4, hidden=5), keep_bias=2.0)
    assert torch.all(m.rnn.cell.bias_ih[5:10] == 2.0)
    with pytest.raises(ValueError, match="no gate"):
        rnn.SequenceClassifier("rnn", 8, 4, keep_bias=1.0)


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
