"""Checks for the GAN chapter's exercises."""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models import gan as G
from .core import (
    Case,
    UsedForbidden,
    call_guarded,
    check_function,
    check_measurement,
    check_trained_model,
    failed,
    finish,
    fresh_generator,
    used_forbidden,
)

#: The model exercise's bars, after the check's training recipe: modes covered (of 8)
#: and quality (share of 1,000 samples within 3 sigma of a centre), for the better of
#: two training runs (seeds 0 and 1): a single GAN run can collapse by chance.
MODEL_SEEDS = (0, 1)
MODEL_MODES_BAR = 5
MODEL_QUALITY_BAR = 0.4
MODEL_RECIPE = dict(steps=1500, batch_size=128, lr=3e-3, betas=(0.5, 0.999))


# --- implement: the two losses from logits -----------------------------------------------

def _d_reference(real_logits, fake_logits):
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def _g_reference(fake_logits):
    return F.softplus(-fake_logits).mean()


def _loss_cases(two: bool, g: Optional[torch.Generator] = None):
    drawn = g is not None
    g = torch.Generator().manual_seed(5) if g is None else g

    def logits(n, scale=2.0):
        return torch.randn(n, generator=g) * scale

    def case(label, *tensors):
        return Case(tensors if two else tensors[1:], label=label)

    if drawn:
        n, m = (int(torch.randint(1, 9, (1,), generator=g)) for _ in range(2))
        return [case(f"drawn at check time: {n} real and {m} fake logits", logits(n, 5.0),
                     logits(m, 5.0))]
    return [
        case("a batch of 4 real and 4 fake logits", logits(4), logits(4)),
        case("batches of different sizes (6 real, 3 fake)", logits(6), logits(3)),
        case("one logit each", torch.tensor([0.5]), torch.tensor([-0.5])),
        case("a confident discriminator (logits of +-200)",
             torch.tensor([200.0, 80.0, 3.0]), torch.tensor([-200.0, -90.0, 2.0])),
        case("a fooled discriminator (logits of -+200)",
             torch.tensor([-200.0, 1.0]), torch.tensor([200.0, -1.0])),
        case("logits of shape (n, 1), as a discriminator with one output unit gives "
             "(4 real, 3 fake)", logits(4).reshape(4, 1), logits(3).reshape(3, 1)),
    ]


def _gradient_problem(fn: Callable, reference: Callable, n_args: int, forbid=()):
    """``None``, or the feedback lines when ``fn``'s loss does not carry the reference's
    gradient with respect to the logits (``fn`` runs traced, refusing ``forbid``)."""
    try:
        return _gradient_lines(fn, reference, n_args, forbid)
    except UsedForbidden:
        raise
    except Exception as exc:  # the learner's bug: say so, without a traceback
        return [f"called on logits that need a gradient, it raised "
                f"{type(exc).__name__}: {exc}"]


def _gradient_lines(fn: Callable, reference: Callable, n_args: int, forbid=()):
    g = torch.Generator().manual_seed(7)
    inputs = [torch.randn(5, generator=g) * 3, torch.randn(4, generator=g) * 3][-n_args:]
    kept = [x.clone() for x in inputs]  # changed inputs: refused by check_function
    leaves = [x.clone().requires_grad_() for x in kept]
    loss = call_guarded(fn, tuple(leaves), forbid=forbid)
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        return ["the value is right, but the loss is detached from the logits (.item(), "
                "torch.tensor(...), .detach() or a NumPy detour?): training needs its "
                "gradient, so keep every step a torch operation on the input tensors."]
    received = torch.autograd.grad(loss, leaves, allow_unused=True)
    ref_leaves = [x.clone().requires_grad_() for x in kept]
    expected = torch.autograd.grad(reference(*ref_leaves), ref_leaves)
    for r, e in zip(received, expected):
        if r is None or not torch.allclose(r, e, atol=1e-6, rtol=1e-4):
            return ["the value is right, but its gradient with respect to the logits is "
                    "not the reference's (a detached part, or a value computed in a "
                    "way autograd cannot follow)."]
    return None


def check_gan_losses(d_fn: Callable, g_fn: Callable, strict: Optional[bool] = None):
    """``d_fn(real_logits, fake_logits)`` and ``g_fn(fake_logits)`` (non-saturating)
    against the references, including logits of +-200 where log(sigmoid) overflows."""
    forbid = [G.discriminator_loss, G.generator_loss, nn.BCEWithLogitsLoss.forward,
              nn.BCELoss.forward, (F, "binary_cross_entropy_with_logits"),
              (F, "binary_cross_entropy"), (torch, "binary_cross_entropy_with_logits"),
              "aten::binary_cross_entropy_with_logits", "aten::binary_cross_entropy",
              # BCE with logits under another name
              (F, "multilabel_soft_margin_loss"), nn.MultiLabelSoftMarginLoss.forward]
    naive = ("you computed log(sigmoid(l)) (or log(1 - sigmoid(l))): for large logits "
             "sigmoid rounds to exactly 0 or 1 and log(sigmoid(l)) overflows to inf. Use "
             "softplus: -log(sigmoid(l)) = softplus(-l), -log(1 - sigmoid(l)) = "
             "softplus(l).")
    d_mistakes = [
        (lambda r, f: -torch.log(torch.sigmoid(r)).mean()
         - torch.log(1 - torch.sigmoid(f)).mean(), naive),
        (lambda r, f: F.softplus(r).mean() + F.softplus(-f).mean(),
         "the labels are swapped: real samples should get a low loss when their logit is "
         "large (D says real), so softplus(-l_real), and fakes softplus(l_fake)."),
        (lambda r, f: F.softplus(-r).sum() + F.softplus(f).sum(),
         "you summed over the batch; average over the batch (each term's mean)."),
        (lambda r, f: F.softplus(-torch.cat([r, f])).mean(),
         "you treated the fakes like real samples: their term is softplus(l_fake)."),
        (lambda r, f: 0.5 * (F.softplus(-r).mean() + F.softplus(f).mean()),
         "you halved the loss; it is the sum of the two means."),
        (lambda r, f: F.softplus(-r).mean(),
         "the fake samples' term softplus(l_fake) is missing."),
        (lambda r, f: F.softplus(-r).mean(0) + F.softplus(f).mean(0),
         "you averaged over the first axis only: logits of shape (n, 1) keep a shape "
         "(1,); average over every element (.mean()) for a 0-dimensional loss."),
    ]
    result = check_function(
        "gan-losses", d_fn, _d_reference, _loss_cases(True), mistakes=d_mistakes,
        forbid=forbid, strict=strict, fresh=lambda g: _loss_cases(True, g),
        hint="d_loss = mean softplus(-real_logits) + mean softplus(fake_logits), a "
        "0-dimensional tensor.")
    if not result.passed:
        return result
    try:
        lines = _gradient_problem(d_fn, _d_reference, 2, forbid)
    except UsedForbidden as exc:
        return used_forbidden("gan-losses", "d_loss", exc.name, strict)
    if lines:
        return failed("gan-losses", ["d_loss: " + lines[0]], strict)
    g_mistakes = [
        (lambda f: -torch.log(torch.sigmoid(f)).mean(), naive),
        (lambda f: -F.softplus(f).mean(),
         "this is the saturating loss log(1 - D(G(z))) of the min-max game; the "
         "non-saturating loss is -log D(G(z)) = softplus(-l)."),
        (lambda f: F.softplus(f).mean(),
         "the sign of the logit is flipped: the generator wants its samples called real, "
         "so its loss is softplus(-l), small when l is large."),
        (lambda f: F.softplus(-f).sum(),
         "you summed over the batch; average over the batch."),
        (lambda f: F.softplus(-f).mean(0),
         "you averaged over the first axis only: logits of shape (n, 1) keep a shape "
         "(1,); average over every element (.mean()) for a 0-dimensional loss."),
    ]
    g_result = check_function(
        "gan-losses", g_fn, _g_reference, _loss_cases(False), mistakes=g_mistakes,
        forbid=forbid, strict=strict, fresh=lambda g: _loss_cases(False, g),
        hint="g_loss = mean softplus(-fake_logits) = mean -log D(G(z)).")
    if g_result.passed:
        try:
            lines = _gradient_problem(g_fn, _g_reference, 1, forbid)
        except UsedForbidden as exc:
            return used_forbidden("gan-losses", "g_loss", exc.name, strict)
        if lines:
            return failed("gan-losses", ["g_loss: " + lines[0]], strict)
        g_result.lines = ["both losses match the reference on all "
                          f"{g_result.cases_total} cases, confident discriminators included."]
    return g_result


# --- model: a generator for the ring ------------------------------------------------------

def _modes(n: int) -> str:
    return f"{n} mode" + ("" if n == 1 else "s")


def _rotation(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s], [s, c]])


def _train_ring(gen_model: nn.Module, seed: int = 0, latent: int = 4,
                angle: float = 0.0, modes: int = G.RING_MODES,
                radius: float = G.RING_RADIUS) -> G.Coverage:
    """The check's recipe: the course's ring discriminator, non-saturating loss, Adam. The
    ring is turned by ``angle`` (radians) for training, and the samples turned back for
    scoring: a generator that knows the ring's centres instead of learning them misses."""
    r = MODEL_RECIPE
    turn = _rotation(angle)
    torch.manual_seed(seed)
    disc = G.Discriminator(G.RING_CONFIG)
    data = torch.Generator().manual_seed(seed)
    opt_g = torch.optim.Adam(gen_model.parameters(), lr=r["lr"], betas=r["betas"])
    opt_d = torch.optim.Adam(disc.parameters(), lr=r["lr"], betas=r["betas"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen_model.train()
        for _ in range(r["steps"]):
            real = G.ring_of_gaussians(r["batch_size"], data, modes, radius) @ turn.T
            z = torch.randn(r["batch_size"], latent, generator=data)
            with torch.no_grad():
                fake = gen_model(z)
            d_loss = _d_reference(disc(real), disc(fake))
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            z = torch.randn(r["batch_size"], latent, generator=data)
            g_loss = _g_reference(disc(gen_model(z)))
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
    finally:
        torch.set_num_threads(threads)
    gen_model.eval()
    with torch.no_grad():
        z = torch.randn(1000, latent, generator=torch.Generator().manual_seed(0))
        return G.ring_coverage(gen_model(z) @ turn, modes, radius)  # turned back


class _Bar(float):
    """The score bar 1.0, told apart from a learner's score of exactly 1.0."""


BAR = _Bar(1.0)


def check_ring_generator(make_generator: Callable, strict: Optional[bool] = None,
                         latent: int = 4):
    """Build ``make_generator(latent)``, train it on the ring (turned by an angle drawn at
    check time) against the check's own discriminator (twice, seeds :data:`MODEL_SEEDS`;
    the better run counts) and require
    :data:`MODEL_MODES_BAR` modes and :data:`MODEL_QUALITY_BAR` quality. The course's
    ``Generator`` is refused (also inside another module); the output must depend on
    ``z`` and only on ``z``, ``latent`` must set the noise size, and training must change
    the output."""
    scores = {}

    before = {}

    def requirements(model):
        if not any(p.requires_grad for p in model.parameters()):
            return ["the model has no trainable parameters: the check trains it."]
        z = torch.randn(64, latent, generator=torch.Generator().manual_seed(2))
        z2 = torch.randn(64, latent, generator=torch.Generator().manual_seed(3))
        was_training = model.training
        model.eval()
        with torch.no_grad():
            a, b, c = model(z), model(z.clone()), model(z2)
        model.train(was_training)
        if not torch.allclose(a, b, atol=1e-6):
            return ["the same noise z gave different points: the generator draws its own "
                    "randomness (torch.randn_like?) instead of mapping the z it is given; "
                    "all of a generator's randomness must come from z."]
        if torch.allclose(a, c, atol=1e-6) or a.std(0).max() < 1e-6:
            return ["different noise z gave the same points: the output must depend on "
                    "z, a different point for a different z."]
        before["out"] = a
        other = latent + 3
        try:
            with torch.no_grad():
                out = make_generator(other)(torch.randn(5, other))
            ok = tuple(out.shape) == (5, 2)
        except Exception:
            ok = False
        if not ok:
            return [f"make_generator({other}) does not map noise of shape (5, {other}) to "
                    "points (5, 2): use the latent argument for the first layer's input "
                    "size instead of a fixed number."]
        return None

    def changed_by_training(model):
        z = torch.randn(64, latent, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            after = model(z)
        if torch.allclose(after, before["out"], atol=1e-4):
            return ["training did not change the generator's output: the points do not "
                    "come from its trainable weights (a fixed mixture with a dummy "
                    "parameter?). Build the generator from layers that training can move."]
        return None

    # the ring the generator must learn is drawn at check time: turned by an angle (at
    # least 0.15 rad from the chapter's ring, whose modes are 0.79 rad apart), with 7 or 9
    # modes (never the chapter's 8) on a circle of another radius: a generator that knows
    # the chapter's centres (and learns only a rotation or a scale) covers too few
    draw = fresh_generator()
    angle = 0.15 + 0.49 * float(torch.rand(1, generator=draw))
    modes = 7 if float(torch.rand(1, generator=draw)) < 0.5 else 9
    radius = round(G.RING_RADIUS * (1.15 + 0.1 * float(torch.rand(1, generator=draw))), 2)
    modes_bar = math.ceil(MODEL_MODES_BAR / G.RING_MODES * modes)

    def train(model):
        import copy

        start = copy.deepcopy(model.state_dict())
        runs = []
        for seed in MODEL_SEEDS:
            model.load_state_dict(start)
            runs.append(_train_ring(model, seed, latent, angle, modes, radius))
        cov = max(runs, key=lambda c: (c.modes, c.quality))
        scores["modes"], scores["quality"] = cov.modes, cov.quality
        # one score for check_trained_model: passes (>= 1) if both bars are met
        return min(cov.modes / modes_bar, cov.quality / MODEL_QUALITY_BAR)

    bar_text = (f"at least {modes_bar} of the {modes} modes covered and quality >= "
                f"{MODEL_QUALITY_BAR} (the check's ring, drawn at check time: {modes} modes "
                f"on a circle of radius {radius})")

    def text(v):
        if v is BAR or "modes" not in scores:
            return bar_text
        return f"{_modes(scores['modes'])} covered, quality {scores['quality']:.2f}"

    def below_bar(model, score):
        with torch.no_grad():
            out = model(torch.randn(256, latent, generator=torch.Generator().manual_seed(1)))
        if G.ring_coverage(out).modes >= MODEL_MODES_BAR:
            return [f"likely mistake: the generator draws the chapter's ring, but the check "
                    f"trained it on a ring drawn at check time ({modes} modes, radius "
                    f"{radius}, turned by {angle:.2f} rad): its points come from centres "
                    "it knows, not from what it learned. Build it from layers that training "
                    "moves, and let the discriminator teach it the ring."]
        if out.min() >= 0 and out.max() <= 1:
            return ["likely mistake: the outputs stay in [0, 1] (a sigmoid at the end?), "
                    f"but the centres lie on a circle of radius {radius}, from -{radius} "
                    f"to {radius}; end with a plain nn.Linear."]
        if out.abs().max() <= 1:
            return ["likely mistake: the outputs stay in [-1, 1] (a tanh at the end?), "
                    f"but the centres lie on a circle of radius {radius}; end with a plain "
                    "nn.Linear."]
        linear = (nn.Linear, nn.Sequential, nn.Identity, nn.Dropout)
        if all(isinstance(m, linear) for m in model.modules()):
            return ["hint: a generator needs nonlinear hidden layers (e.g. two of 32 "
                    f"units with ReLU) to bend a Gaussian onto {modes} separate modes; a stack "
                    "of linear layers is one linear map and can only draw another "
                    "Gaussian."]
        return ["hint: two hidden layers of 32 or more units with ReLU and a plain "
                "nn.Linear to 2 outputs are enough; a much smaller or much deeper "
                "network trains worse with this recipe."]

    return check_trained_model(
        "gan-ring-generator", make_generator, "make_generator", (latent,),
        probe=torch.randn(5, latent, generator=torch.Generator().manual_seed(0)),
        probe_text=f"noise z of shape (5, {latent})", out_shape=(5, 2),
        shape_hint="the generator maps noise (n, latent) to points (n, 2).",
        requirements=[requirements], train=train, bar=BAR, score_text=text,
        below_bar=below_bar, after_training=[changed_by_training],
        refuse_classes=[G.Generator],
        success=lambda model, score: f"{text(score)} (bar: {bar_text}).", strict=strict)


# --- experiment: sample quality on the ring -----------------------------------------------

def _edge_points() -> torch.Tensor:
    """37 points: some just inside and just outside 3 sigma of a centre, one point alone
    at a mode (a share far below a covered mode's), and some far from every centre."""
    c = G.ring_centres()
    s = G.RING_SIGMA
    g = torch.Generator().manual_seed(11)
    pts = [c[0] + torch.tensor([2.99 * s, 0.0]), c[0] + torch.tensor([3.006 * s, 0.0]),
           c[2] + torch.tensor([0.0, 2.99 * s]), c[2] + torch.tensor([0.0, 3.01 * s]),
           c[5]]  # mode 5 holds 1 point of 37
    pts += [c[1] + s * torch.randn(2, generator=g) for _ in range(20)]
    pts += [c[1] * 0.5 + 0.1 * torch.randn(2, generator=g) for _ in range(12)]
    return torch.stack(pts)


def _known_quality_mistakes(dmin: torch.Tensor) -> dict:
    s = G.RING_SIGMA
    return {
        "you counted the points within 1 standard deviation; the measure uses 3.":
        (dmin <= s).float().mean().item(),
        "you counted the points within 2 standard deviations; the measure uses 3.":
        (dmin <= 2 * s).float().mean().item(),
        "you compared the squared distance with 3 sigma; compare the distance itself.":
        (dmin.pow(2) <= 3 * s).float().mean().item(),
        "you returned a count; the quality is a share between 0 and 1 (divide by n).":
        float((dmin <= 3 * s).sum().item()),
        "you measured the share of points *outside* 3 sigma; the quality is the share "
        "inside.": (dmin > 3 * s).float().mean().item(),
        "you divided by 1000, not by the number of points: take the share of the n "
        "points you are given (len(points), or .mean()).":
        (dmin <= 3 * s).float().sum().item() / 1000,
    }


def check_ring_quality(measure: Callable, points: torch.Tensor,
                       strict: Optional[bool] = None):
    """``measure(points)``: the share of points within 3 sigma of the nearest centre,
    first on 37 points placed at the edges of the definition, then on ``points``."""
    s = G.RING_SIGMA
    g = fresh_generator()
    n = int(torch.randint(50, 400, (1,), generator=g))
    near = int(torch.randint(0, n, (1,), generator=g))
    drawn = torch.cat([G.ring_of_gaussians(near, g) if near else torch.zeros(0, 2),
                       6 * torch.rand(n - near, 2, generator=g) - 3])
    inputs = [(_edge_points(), "37 test points: some just inside and just outside 3 "
               "standard deviations of a centre, one point alone at a mode, some far "
               "from every centre"),
              (torch.as_tensor(points).detach().float(), None),
              (drawn, f"{n} points drawn at check time ({near} from the ring, the rest "
               "uniform in the square [-3, 3]^2)")]
    result = None
    for pts, text in inputs:
        dmin = torch.cdist(pts, G.ring_centres()).min(dim=1).values
        expected = (dmin <= 3 * s).float().mean().item()
        result = check_measurement(
            "gan-ring-quality", measure, "ring_quality", (pts.clone(),), expected,
            known=_known_quality_mistakes(dmin), forbid=[G.ring_coverage], rel_tol=1e-6,
            abs_tol=1e-6,
            input_text=text or f"{len(pts)} points of shape {tuple(pts.shape)}",
            hint="distances from every point to the 8 centres (torch.cdist), the "
            "smallest per point, the share of those <= 3 * 0.05, counting every point "
            "(whether or not its mode counts as covered) and dividing by all n points.",
            success=lambda v: f"quality {v:.3f}: that share of the points lies within 3 "
            "standard deviations of a centre (real samples: 0.99).",
            strict=False)
        if not result.passed:
            break
    return finish(result, strict)


__all__ = ["check_gan_losses", "check_ring_generator", "check_ring_quality", "failed"]
