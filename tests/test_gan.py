"""The GAN module: shapes, losses against hand-computed values, the non-saturating
gradient claim, the batched training against the modules, ring coverage, bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fromscratch.models import gan as G

SMALL = G.GANConfig(data_dim=64, latent=3, hidden=8)


def test_shapes_of_generator_and_discriminator():
    torch.manual_seed(0)
    g, d = G.Generator(SMALL), G.Discriminator(SMALL)
    x = g(torch.randn(6, 3))
    assert x.shape == (6, 64) and 0 <= x.min() and x.max() <= 1
    assert d(x).shape == (6,)
    assert d(x.reshape(6, 1, 8, 8)).shape == (6,)  # images are flattened
    packed = G.Discriminator(G.GANConfig(data_dim=64, latent=3, hidden=8, pack=2))
    assert packed(x).shape == (3,)
    ring = G.Generator(G.RING_CONFIG)
    assert ring.sample(5, torch.Generator().manual_seed(0)).shape == (5, 2)


def test_losses_match_hand_computed_values():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.0])
    by_hand_d = (math.log(2) + math.log(1 + math.exp(-2))) / 2 \
        + (math.log(2) + math.log(1 + math.exp(-1))) / 2
    assert G.discriminator_loss(real, fake).item() == pytest.approx(by_hand_d, rel=1e-6)
    by_hand_ns = (math.log(2) + math.log(1 + math.e)) / 2  # -log sigmoid(l)
    assert G.generator_loss(fake).item() == pytest.approx(by_hand_ns, rel=1e-6)
    by_hand_s = -(math.log(2) + math.log(1 + math.exp(-1))) / 2  # log(1 - sigmoid(l))
    assert G.generator_loss(fake, "saturating").item() == pytest.approx(by_hand_s, rel=1e-6)
    bce = F.binary_cross_entropy_with_logits
    big = torch.tensor([300.0, -300.0])
    assert torch.isfinite(G.discriminator_loss(big, big))
    assert torch.allclose(G.discriminator_loss(big, -big),
                          bce(big, torch.ones(2)) + bce(-big, torch.zeros(2)))


def test_non_saturating_gradient_is_strong_where_the_saturating_one_vanishes():
    for logit in (-8.0, -4.0, 0.0, 3.0):
        grads = {}
        for kind in ("saturating", "nonsaturating"):
            l = torch.tensor([logit], requires_grad=True)
            G.generator_loss(l, kind).backward()
            grads[kind] = l.grad.item()
        p = 1 / (1 + math.exp(-logit))  # D(G(z))
        assert grads["saturating"] == pytest.approx(-p, rel=1e-5, abs=1e-9)
        assert grads["nonsaturating"] == pytest.approx(-(1 - p), rel=1e-5)
    # where D rejects the fakes (D(G(z)) = sigmoid(-8)), the ratio is about e^8
    l = torch.tensor([-8.0])
    assert (1 - torch.sigmoid(l)) / torch.sigmoid(l) > 2000


def test_minibatch_std_appends_the_batch_spread():
    h = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    out = G.minibatch_std(h)
    assert out.shape == (2, 3)
    assert torch.allclose(out[:, -1], torch.full((2,), math.sqrt(2.0)))
    with pytest.raises(ValueError, match="at least 2"):
        G.minibatch_std(h[:1])


@pytest.mark.parametrize("config", [
    G.GANConfig(data_dim=64, latent=3, hidden=8),
    G.GANConfig(data_dim=2, latent=2, hidden=8, output="linear", minibatch_std=True),
    G.GANConfig(data_dim=2, latent=2, hidden=8, output="linear", pack=2),
])
def test_batched_forward_equals_the_modules(config):
    torch.manual_seed(0)
    gens = [G.Generator(config) for _ in range(2)]
    discs = [G.Discriminator(config) for _ in range(2)]
    pg = {n: torch.stack([dict(g.named_parameters())[n] for g in gens])
          for n, _ in gens[0].named_parameters()}
    pd = {n: torch.stack([dict(d.named_parameters())[n] for d in discs])
          for n, _ in discs[0].named_parameters()}
    z = torch.randn(2, 4, config.latent)
    x = G._stacked_generator(pg, z, config.output)
    logits = G._stacked_discriminator(pd, x, config)
    for k in range(2):
        assert torch.allclose(x[k], gens[k](z[k]), atol=1e-6)
        assert torch.allclose(logits[k], discs[k](x[k]), atol=1e-6)


def test_training_is_deterministic_and_matches_one_by_one():
    X = torch.rand(40, 64, generator=torch.Generator().manual_seed(0))
    kw = dict(steps=5, batch_size=8, snapshot_every=5, ema=0.9)
    g2, d2, h2 = G.train_gans(SMALL, X, seeds=[0, 1], **kw)
    g1, _, h1 = G.train_gans(SMALL, X, seeds=[1], **kw)
    z = torch.randn(3, SMALL.latent)
    with torch.no_grad():
        assert torch.allclose(g2[1](z), g1[0](z), atol=1e-5)
        assert not torch.allclose(g2[0](z), g2[1](z))
    again, _, _ = G.train_gans(SMALL, X, seeds=[0, 1], **kw)
    with torch.no_grad():
        assert torch.equal(again[0](z), g2[0](z))
    h = h2[0]
    assert h.snapshot_steps == [5] and len(h.snapshots) == len(h.ema_snapshots) == 1
    assert h.steps == [5] and len(h.d_loss) == len(h.g_loss) == 1
    with torch.no_grad():
        assert torch.allclose(h.generator_at(-1)(z), g2[0](z))
        assert torch.allclose(h.discriminator_at(-1)(X[:4]), d2[0](X[:4]))
        assert not torch.allclose(h.generator_at(-1, ema=True)(z), g2[0](z))
    samples = G.digit_samples(h.generator_at(-1), n=7)
    assert samples.shape == (7, 1, 8, 8) and samples.max() <= 16


def test_ring_data_and_coverage_on_known_inputs():
    centres = G.ring_centres()
    assert centres.shape == (8, 2)
    assert torch.allclose(centres.norm(dim=1), torch.full((8,), 2.0))
    assert torch.allclose(centres[0], torch.tensor([2.0, 0.0]))
    real = G.ring_of_gaussians(4000, torch.Generator().manual_seed(0))
    c = G.ring_coverage(real)
    assert c.modes == 8 and c.quality > 0.97
    one_mode = centres[:1].repeat(100, 1)
    c = G.ring_coverage(one_mode)
    assert c.modes == 1 and c.quality == 1.0 and c.share[0] == 1.0
    # 3 of 4 points on modes 0 and 1 (below the default share on neither), 1 far away
    pts = torch.stack([centres[0], centres[0], centres[1], torch.zeros(2)])
    c = G.ring_coverage(pts)
    assert c.modes == 2 and c.quality == pytest.approx(0.75)
    assert G.ring_coverage(pts, min_share=0.4).modes == 1
    off = centres[:1] + torch.tensor([[3.5 * G.RING_SIGMA, 0.0]])
    assert G.ring_coverage(off).quality == 0.0


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="output"):
        G.GANConfig(output="tanh")
    with pytest.raises(ValueError, match="hidden"):
        G.GANConfig(hidden=0)
    g, d = G.Generator(SMALL), G.Discriminator(SMALL)
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        g(torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"\(n, 64\)"):
        d(torch.randn(2, 10))
    with pytest.raises(ValueError, match="kind"):
        G.generator_loss(torch.zeros(2), "minimax")
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        G.ring_coverage(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="NaN"):
        G.ring_coverage(torch.full((2, 2), float("nan")))
    X = torch.rand(20, 64)
    with pytest.raises(ValueError, match="divide by 16"):
        G.train_gans(SMALL, X * 16, steps=1, batch_size=4)
    with pytest.raises(ValueError, match="steps"):
        G.train_gans(SMALL, X, steps=0)
    with pytest.raises(ValueError, match="ema"):
        G.train_gans(SMALL, X, steps=1, batch_size=4, ema=1.5)
    with pytest.raises(ValueError, match="kind"):
        G.train_gans(SMALL, X, steps=1, batch_size=4, loss="wasserstein")
    with pytest.raises(ValueError, match=r"\(N, 64\)"):
        G.train_gans(SMALL, torch.rand(20, 10), steps=1, batch_size=4)
    with pytest.raises(ValueError, match="digits generator"):
        G.digit_samples(G.Generator(G.RING_CONFIG))


def test_more_bad_input_gives_clear_errors():
    X = torch.rand(20, 64, generator=torch.Generator().manual_seed(0))
    _, _, (h,) = G.train_gans(SMALL, X, steps=2, batch_size=4, ema=None)
    with pytest.raises(ValueError, match="ema=None"):
        G.fd_over_training(h, lambda s: 0.0, ema=True)
    with pytest.raises(ValueError, match="ema=None"):
        h.generator_at(-1, ema=True)
    assert len(G.fd_over_training(h, lambda s: 0.0)) == 1  # the raw weights still work
    with pytest.raises(ValueError, match="modes"):
        G.ring_coverage(torch.zeros(3, 2), modes=0)
    with pytest.raises(ValueError, match="sigma"):
        G.ring_coverage(torch.zeros(3, 2), sigma=0.0)
    with pytest.raises(ValueError, match="modes"):
        G.ring_centres(2.5)
    with pytest.raises(ValueError, match="non-empty"):
        G.discriminator_loss(torch.zeros(0), torch.zeros(2))
    with pytest.raises(ValueError, match="non-empty"):
        G.generator_loss(torch.zeros(0))
    with pytest.raises(ValueError, match="log_every"):
        G.train_gans(SMALL, X, steps=1, batch_size=4, log_every=0)
    with pytest.raises(TypeError):
        G.minibatch_std(torch.zeros(2, 3), pack=2)  # no silently ignored argument
