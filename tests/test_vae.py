"""The autoencoder / VAE module: shapes, ELBO terms, reparameterization, save/load."""

from __future__ import annotations

import math

import pytest
import torch

from fromscratch.models import vae as V


def _images(n=5, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_shapes_of_autoencoder_and_vae():
    cfg = V.VAEConfig(latent=3, hidden=16)
    x = _images()
    ae, vae = V.Autoencoder(cfg), V.VAE(cfg)
    assert ae.encode(x).shape == (5, 3) and ae(x).shape == (5, 1, 8, 8)
    mu, logvar = vae.encode_distribution(x)
    assert mu.shape == logvar.shape == (5, 3)
    assert vae(x).shape == (5, 1, 8, 8) and vae(x.reshape(5, 64)).shape == (5, 1, 8, 8)
    out = vae.sample(7, torch.Generator().manual_seed(0))
    assert out.shape == (7, 1, 8, 8) and 0 <= out.min() and out.max() <= 1


def test_kl_matches_closed_form_and_monte_carlo():
    mu = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    logvar = torch.tensor([[0.0, 0.0], [math.log(4.0), math.log(0.25)]])
    kl = V.kl_divergence(mu, logvar)
    assert kl[0].item() == pytest.approx(0.0, abs=1e-7)
    by_hand = 0.5 * (1 + 4 - 1 - math.log(4)) + 0.5 * (4 + 0.25 - 1 - math.log(0.25))
    assert kl[1].item() == pytest.approx(by_hand, rel=1e-6)
    q = torch.distributions.Normal(mu[1], (0.5 * logvar[1]).exp())
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(-1).mean()
    assert mc.item() == pytest.approx(by_hand, rel=0.02)


def test_elbo_terms_and_loss():
    torch.manual_seed(0)
    model = V.VAE(V.VAEConfig(latent=2, hidden=8, sigma=0.5))
    x = _images()
    recon, kl = model.elbo_terms(x, torch.Generator().manual_seed(1))
    assert recon.shape == kl.shape == (5,) and (recon >= 0).all() and (kl >= 0).all()
    loss2 = model.loss(x, beta=2.0, generator=torch.Generator().manual_seed(1))
    assert loss2.item() == pytest.approx((recon + 2 * kl).mean().item(), rel=1e-6)
    x_hat = torch.full((1, 64), 0.5)
    nll = V.reconstruction_nll(x_hat, torch.zeros(1, 64), sigma=0.5)
    assert nll.item() == pytest.approx(64 * 0.25 / 0.5, rel=1e-6)


def test_reparameterization_gradient_matches_the_analytic_one():
    # E[z^2] for z ~ N(mu, sigma^2) is mu^2 + sigma^2: d/dmu = 2 mu, d/dlogvar = sigma^2
    mu = torch.tensor([0.7], requires_grad=True)
    logvar = torch.tensor([math.log(0.5)], requires_grad=True)
    eps = torch.randn(200_000, 1, generator=torch.Generator().manual_seed(0))
    z = V.reparameterize(mu.expand(len(eps), 1), logvar.expand(len(eps), 1), eps=eps)
    z.pow(2).mean().backward()
    assert mu.grad.item() == pytest.approx(1.4, rel=0.01)
    assert logvar.grad.item() == pytest.approx(0.5, rel=0.02)


def test_training_lowers_the_loss_and_is_deterministic():
    X = V.as_flat_images(_images(64, seed=3))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = V.VAE(V.VAEConfig(latent=2, hidden=16))
        hist = V.train_autoencoder(model, X, epochs=5, batch_size=16, seed=0)
        runs.append(hist)
        assert not model.training
    assert runs[0].recon == runs[1].recon and runs[0].kl == runs[1].kl
    assert runs[0].recon[-1] + runs[0].kl[-1] < runs[0].recon[0] + runs[0].kl[0]
    ae = V.Autoencoder(V.VAEConfig(latent=2, hidden=16))
    hist = V.train_autoencoder(ae, X, epochs=3, batch_size=16)
    assert hist.kl == [0.0, 0.0, 0.0]
    assert V.reconstruction_rmse(ae, X) > 0


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = V.VAE(V.VAEConfig(latent=3, hidden=8, sigma=0.2))
    path = tmp_path / "sub" / "vae.pt"
    V.save_vae(model, path, note="test")
    loaded = V.load_vae(path)
    assert loaded.config == model.config and not loaded.training
    x = _images()
    assert torch.equal(loaded(x), model.eval()(x))


def test_load_or_train_uses_the_cache(tmp_path, monkeypatch):
    calls = []

    def fake_train(seed=0):
        calls.append(seed)
        torch.manual_seed(seed)
        return V.VAE(V.CHAPTER_CONFIG), V.VAEHistory()

    monkeypatch.setattr(V, "train_vae", fake_train)
    path = tmp_path / "vae.pt"
    first = V.load_or_train_vae(path)
    second = V.load_or_train_vae(path)
    assert calls == [0] and path.exists()
    x = _images()
    assert torch.equal(first(x), second(x))


def test_bad_inputs_have_clear_messages(tmp_path):
    model = V.VAE(V.VAEConfig(latent=2, hidden=8))
    with pytest.raises(ValueError, match="shape"):
        model(torch.rand(8, 8))
    with pytest.raises(TypeError, match="float"):
        model(torch.ones(2, 64, dtype=torch.long))
    with pytest.raises(ValueError, match="divide by 16"):
        V.train_autoencoder(model, torch.rand(4, 64) * 16, epochs=1)
    with pytest.raises(ValueError, match="one shape"):
        V.reparameterize(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="positive integer"):
        V.VAEConfig(latent=0)
    with pytest.raises(ValueError, match="sigma"):
        V.VAEConfig(sigma=0.0)
    with pytest.raises(FileNotFoundError, match="train_vae"):
        V.load_vae(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="VAE"):
        V.save_vae(V.Autoencoder(), tmp_path / "ae.pt")


def test_training_together_equals_training_one_by_one():
    X = V.as_flat_images(_images(40, seed=4))
    cfg = V.VAEConfig(latent=2, hidden=8)
    alone = []
    for seed, beta in ((0, 1.0), (1, 0.5)):
        torch.manual_seed(seed)
        m = V.VAE(cfg)
        V.train_autoencoder(m, X, epochs=3, batch_size=16, seed=seed, beta=beta)
        alone.append(m)
    together = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        together.append(V.VAE(cfg))
    V.train_together(together, X, epochs=3, batch_size=16, seeds=[0, 1], betas=[1.0, 0.5])
    for a, b in zip(alone, together):
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert torch.allclose(pa, pb, atol=1e-5)
    with pytest.raises(ValueError, match="share"):
        V.train_together([V.VAE(cfg), V.Autoencoder(cfg)], X, epochs=1)
