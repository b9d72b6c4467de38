"""The CNN building blocks against PyTorch's own, to float32 tolerance."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fromscratch.models import cnn

CASES = [
    # (N, C_in, H, W, C_out, k, stride, padding)
    (2, 3, 7, 9, 4, 3, 1, 0),
    (2, 3, 7, 9, 4, 3, 2, 1),
    (1, 1, 8, 8, 5, 5, 1, 2),
    (3, 2, 6, 5, 3, 1, 1, 0),
    (1, 4, 10, 10, 2, 3, 3, 2),
]


@pytest.mark.parametrize("N,C,H,W,O,k,s,p", CASES)
@pytest.mark.parametrize("conv", [cnn.conv2d_loops, cnn.conv2d_unfold])
def test_convolution_equals_f_conv2d(conv, N, C, H, W, O, k, s, p):
    x, w, b = torch.randn(N, C, H, W), torch.randn(O, C, k, k), torch.randn(O)
    torch.testing.assert_close(conv(x, w, b, s, p), F.conv2d(x, w, b, s, p), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(conv(x, w, None, s, p), F.conv2d(x, w, None, s, p), atol=1e-5,
                               rtol=1e-5)


def test_conv_layer_matches_nn_conv2d_forward_and_backward():
    ours, ref = cnn.Conv2d(3, 6, 3, stride=2, padding=1), nn.Conv2d(3, 6, 3, stride=2, padding=1)
    with torch.no_grad():
        ref.weight.copy_(ours.weight)
        ref.bias.copy_(ours.bias)
    x = torch.randn(4, 3, 9, 9, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    torch.testing.assert_close(ours(x), ref(x2))
    ours(x).square().sum().backward()
    ref(x2).square().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("k,s", [(2, None), (3, 2), (2, 1), (1, None)])
def test_max_pool_equals_f_max_pool2d(k, s):
    x = torch.randn(2, 3, 7, 8)
    assert torch.equal(cnn.max_pool2d(x, k, s), F.max_pool2d(x, k, s or k))


@pytest.mark.parametrize("n,k,p,s", [(8, 3, 0, 1), (8, 3, 1, 1), (8, 3, 1, 2), (7, 2, 0, 2), (5, 5, 0, 1)])
def test_output_size_matches_pytorch(n, k, p, s):
    out = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), padding=p, stride=s)
    assert cnn.conv_output_size(n, k, p, s) == out.shape[-1]


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="channels"):
        cnn.conv2d_unfold(torch.zeros(1, 2, 5, 5), torch.zeros(3, 1, 3, 3))
    with pytest.raises(ValueError, match=r"\(N, C_in, H, W\)"):
        cnn.conv2d_loops(torch.zeros(5, 5), torch.zeros(3, 1, 3, 3))
    with pytest.raises(ValueError, match="larger than the padded input"):
        cnn.conv_output_size(2, 5)


def test_digits_cnn_shapes_and_feature_maps():
    model = cnn.DigitsCNN(cnn.CNNConfig())
    x = torch.randn(5, 1, 8, 8)
    assert model(x).shape == (5, 10)
    m1, m2 = model.feature_maps(x)
    assert m1.shape == (5, 32, 4, 4) and m2.shape == (5, 64, 2, 2)


def test_dense_equivalent_params_counts_an_nn_linear():
    lin = nn.Linear(64, 2 * 8 * 8)
    assert cnn.dense_equivalent_params((1, 8, 8), (2, 8, 8)) == sum(p.numel() for p in lin.parameters())


def test_large_scale_switch(monkeypatch):
    monkeypatch.setenv("FROMSCRATCH_SCALE", "large")
    assert cnn.CNNConfig.default().channels[0] > cnn.CNNConfig().channels[0]
    monkeypatch.setenv("FROMSCRATCH_SCALE", "huge")
    with pytest.raises(ValueError, match="FROMSCRATCH_SCALE"):
        cnn.CNNConfig.default()


def test_layer_and_window_errors_are_clear():
    with pytest.raises(TypeError, match="kernel_size must be an int"):
        cnn.Conv2d(1, 4, (3, 3))
    with pytest.raises(ValueError, match="does not fit"):
        cnn.max_pool2d(torch.zeros(1, 1, 2, 2), 3)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        cnn.max_pool2d(torch.zeros(1, 1, 4, 4), 2, stride=0)
