"""The generative chapters' sample-quality measures: the Frechet distance against an
independent formula, the shipped classifier and calibration against a fresh recomputation,
and the errors a learner meets."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from fromscratch import generative as gen


@pytest.fixture(scope="module")
def digits():
    """Training and test images in grey levels 0-16, and their labels."""
    from fromscratch.data import load_digits_split

    split = load_digits_split()
    return split.X_train * 16, split.y_train, split.X_test * 16, split.y_test


def random_cov(d, generator, rank=None):
    a = torch.randn(d, rank or 2 * d, generator=generator, dtype=torch.float64)
    return a @ a.T / a.shape[1]


def fd_scipy(mu1, cov1, mu2, cov2) -> float:
    """The textbook formula with a general matrix square root (as in the FID reference code)."""
    mu1, cov1, mu2, cov2 = (np.asarray(t, dtype=np.float64) for t in (mu1, cov1, mu2, cov2))
    covmean = scipy.linalg.sqrtm(cov1 @ cov2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2)
                 - 2 * np.trace(covmean).real)


def test_fd_formula_matches_scipy_sqrtm_on_random_statistics():
    g = torch.Generator().manual_seed(0)
    for d in (1, 3, 16, 64):
        mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g).double()
        cov1, cov2 = random_cov(d, g), 3 * random_cov(d, g)
        ours = gen.frechet_distance_from_stats(mu1, cov1, mu2, cov2)
        assert ours == pytest.approx(fd_scipy(mu1, cov1, mu2, cov2), rel=1e-4), d


def test_fd_formula_matches_scipy_sqrtm_on_classifier_features(digits):
    X_train, _, X_test, _ = digits
    noisy = (X_test + 4 * torch.randn(X_test.shape)).clamp(0, 16)
    stats = [gen.feature_statistics(gen.features(x)) for x in (X_train, noisy)]
    ours = gen.frechet_distance_from_stats(*stats[0], *stats[1])
    assert ours == pytest.approx(fd_scipy(*stats[0], *stats[1]), rel=1e-4)
    assert gen.frechet_distance(gen.features(X_train), gen.features(noisy)) == pytest.approx(ours, rel=1e-9)


def test_fd_is_zero_for_a_set_with_itself_and_symmetric(digits):
    X_train, _, X_test, _ = digits
    assert gen.fd(X_test, X_test) < 1e-6
    assert gen.fd(X_test, X_train) == pytest.approx(gen.fd(X_train, X_test), rel=1e-6)
    assert gen.fd(X_test) == pytest.approx(gen.fd(X_test, X_train), rel=1e-9)  # default: train set


def test_fd_closed_form_for_gaussians_with_diagonal_covariances():
    # diagonal covariances commute: FD = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2
    g = torch.Generator().manual_seed(1)
    mu1, mu2 = torch.randn(20, generator=g).double(), torch.randn(20, generator=g).double()
    a, b = torch.rand(20, generator=g).double() * 4, torch.rand(20, generator=g).double() * 4
    expected = ((mu1 - mu2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum()
    got = gen.frechet_distance_from_stats(mu1, torch.diag(a), mu2, torch.diag(b))
    assert got == pytest.approx(expected.item(), rel=1e-10)
    # and for a rotated pair (same rotation of both): FD does not depend on the basis
    q, _ = torch.linalg.qr(torch.randn(20, 20, generator=g).double())
    rotated = gen.frechet_distance_from_stats(q @ mu1, q @ torch.diag(a) @ q.T,
                                              q @ mu2, q @ torch.diag(b) @ q.T)
    assert rotated == pytest.approx(expected.item(), rel=1e-8)


def test_fd_from_samples_approaches_the_closed_form():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(200_000, 2, generator=g).double()
    y = torch.randn(200_000, 2, generator=g).double() * torch.tensor([2.0, 1.0]) + torch.tensor([1.0, 0.0])
    # |(1, 0)|^2 + (1 - 2)^2 + (1 - 1)^2 = 2
    assert gen.frechet_distance(x, y) == pytest.approx(2.0, abs=0.03)


def test_shipped_calibration_recomputes_and_keeps_its_order():
    shipped = gen.load_calibration()
    table = gen.calibrate_fd(shipped["seed"])
    assert list(table) == list(gen.CALIBRATION_SAMPLES) == list(shipped["table"])
    for name, row in table.items():
        for key, value in row.items():
            # float kernels differ between CPUs in the last digits: a wide tolerance
            assert value == pytest.approx(shipped["table"][name][key], rel=0.1, abs=0.05), (name, key)
    f = {name: row["fd"] for name, row in table.items()}
    assert 2 * f["real"] < f["noisy"]
    assert 3 * f["noisy"] < f["gaussian_full"]
    assert 1.5 * f["gaussian_full"] < f["gaussian_diagonal"] <= f["uniform"]
    # confidence is no score: pure noise gets confident labels, far above chance (0.1)
    assert table["uniform"]["confidence"] > 0.5
    assert table["real"]["class_entropy"] > 2.25
    assert table["real"]["nearest_train_distance"] > 5


def test_retrained_classifier_reproduces_the_shipped_accuracy(digits):
    _, _, X_test, y_test = digits
    model, acc = gen.train_fd_classifier(gen.read_weights_file()["seed"])
    shipped = gen.read_weights_file()["test_accuracy"]
    assert abs(acc - shipped) <= 0.005, (acc, shipped)
    assert gen.label_accuracy(X_test, y_test) == pytest.approx(shipped, abs=1e-6)
    assert acc >= 0.98
    assert gen.features(X_test[:5], model).shape == (5, gen.FD_CLASSIFIER_CONFIG.hidden)


def test_weights_file_is_small_and_inside_the_package():
    assert gen.WEIGHTS_FILE.parent.parent.name == "fromscratch"
    assert gen.WEIGHTS_FILE.stat().st_size < 100_000


def test_features_accept_both_shapes_and_numpy(digits):
    X = digits[2][:7]
    f = gen.features(X)
    assert f.shape == (7, 64) and f.dtype == torch.float32 and (f < 0).any()  # before the ReLU
    torch.testing.assert_close(gen.features(X[:, 0].numpy()), f)
    assert gen.predicted_labels(X).shape == (7,)


def test_bad_inputs_get_clear_errors(digits):
    X = digits[2][:20]
    with pytest.raises(ValueError, match="multiply by 16"):
        gen.features(X / 16)
    with pytest.raises(ValueError, match=r"\(x \+ 1\) \* 8"):
        gen.fd(X / 8 - 1)
    with pytest.raises(ValueError, match=r"clamp\(0, 16\)"):
        gen.features(X + 3 * torch.randn(X.shape))
    with pytest.raises(ValueError, match="0-255"):
        gen.class_entropy(X * 255 / 16)
    with pytest.raises(ValueError, match=r"reshape\(-1, 8, 8\)"):
        gen.features(X.reshape(20, 64))
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        gen.features(X[0, 0])
    with pytest.raises(ValueError, match=r"\(n, 8, 8\) or \(n, 1, 8, 8\)"):
        gen.features(torch.zeros(3, 3, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        gen.features(torch.full((2, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="empty"):
        gen.features(torch.zeros(0, 8, 8))
    with pytest.raises(TypeError, match="torch.Tensor or NumPy array"):
        gen.features([[0.0] * 8] * 8)
    with pytest.raises(ValueError, match="at least 2"):
        gen.fd(X[:1])
    with pytest.raises(ValueError, match="20 images but 3 labels"):
        gen.label_accuracy(X, [1, 2, 3])
    with pytest.raises(ValueError, match=r"\(d,\) and covariances \(d, d\)"):
        gen.frechet_distance_from_stats(torch.zeros(3), torch.eye(3), torch.zeros(4), torch.eye(4))
    with pytest.raises(ValueError, match=r"labels must lie in 0..9"):
        gen.label_entropy([0, 10])
    # a really dark batch is allowed when asked for
    assert gen.features(X / 16, check_range=False).shape == (20, 64)


def test_class_entropy_bounds(digits):
    X_train, y_train, X_test, _ = digits
    assert gen.label_entropy([3] * 50) == 0.0
    assert gen.label_entropy(list(range(10)) * 7) == pytest.approx(math.log(10))
    assert gen.label_entropy([0, 1]) == pytest.approx(math.log(2))
    assert gen.class_entropy(X_train[y_train == 0]) < 0.05  # one digit: a collapsed generator
    assert math.log(10) - 0.05 < gen.class_entropy(X_test) <= math.log(10) + 1e-12


def test_nearest_train_distance_is_zero_for_training_images(digits):
    X_train, _, X_test, _ = digits
    assert gen.nearest_train_distance(X_train[:100], X_train) == 0.0
    assert gen.nearest_train_distance(X_test, X_train) > 5  # new digits are not copies
    one = X_train[:1] + 1.0
    assert gen.nearest_train_distance(one.clamp(0, 16), X_train[:1]) == pytest.approx(
        (one.clamp(0, 16) - X_train[:1]).norm().item())


def test_copy_verdict_is_a_pure_function_of_the_distances():
    real = torch.linspace(1.0, 10.0, 100)  # the 10% quantile is 1.9
    copies = gen.copy_verdict(torch.zeros(50), real)
    assert copies["copying"] and copies["fraction"] == 1.0
    assert copies["real_fraction"] == pytest.approx(0.1, abs=0.01)
    new = gen.copy_verdict(torch.linspace(3.0, 12.0, 50), real)
    assert not new["copying"] and new["fraction"] == 0.0
    half = gen.copy_verdict(torch.cat([torch.zeros(30), torch.full((20,), 9.0)]), real)
    assert half["copying"]  # 60% copies are copies
    with pytest.raises(ValueError, match="at least one distance"):
        gen.copy_verdict(torch.zeros(0), real)


def test_copy_test_finds_stored_and_shifted_digits_and_passes_new_ones(digits):
    """Stored digits, from the training or the test split, and digits moved by one pixel
    (which FD does not see) are copies; held-out digits with noise and samples of a
    Gaussian fitted to the pixels are not."""
    X_train, _, X_test, _ = digits
    assert gen.copy_test(X_train[:300])["copying"]
    assert gen.copy_test(X_test[:300])["copying"]
    for moved in gen.shifted_images(X_train[:300])[[1, 3, 5, 7]]:
        assert gen.copy_test(moved)["copying"]
    noisy = (X_test + 2 * torch.randn(X_test.shape, generator=torch.Generator().manual_seed(0)))
    assert not gen.copy_test(noisy.clamp(0, 16))["copying"]
    assert not gen.copy_test(gen.calibration_samples(0)["gaussian_full"])["copying"]


def test_shifted_images_moves_every_pixel_by_one():
    x = torch.arange(64.0).view(1, 1, 8, 8)
    moved = gen.shifted_images(x)
    assert moved.shape == (9, 1, 1, 8, 8)
    assert torch.equal(moved[4], x)  # the middle one is not moved
    assert torch.equal(moved[5][..., :, 1:], x[..., :, :-1])  # right by one
    assert (moved[5][..., :, 0] == 0).all()
