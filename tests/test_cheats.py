"""Answers a learner hunting for a shortcut might write: each must fail, with feedback that
names the problem and does not give the right value away (issue 17).

The classes: (1) reaching a correct implementation the course ships (the check's own
reference or helpers, the package's model code, PyTorch's equivalent, PyTorch's private
decompositions and KL formulas, a verbatim copy run through ``exec``), however it is
reached, and switching the check's tracing off; (2) copying a measurement from the
feedback; (3) the course's model inside a wrapper or hidden from ``model.modules()``;
(4) shortcuts that satisfy a probe but not the task; (5) copy machines: generators that
return stored (or shifted) real digits, a VAE that hands its input around the bottleneck;
(6) a library's NotImplementedError inside an attempted answer is an error, not "not
attempted"."""

import re

import pytest

from fromscratch import exercises

REFUSED = "the check refuses"  # every refusal says so

#: (exercise id, short name, the answer cell, words the feedback must contain)
CHEATS = [
    # --- CNN -------------------------------------------------------------------------
    ("cnn-max-pool", "the check's reference, imported", """
from fromscratch.checks.cnn import _ref_max_pool as max_pool2d
""", "a part of the check itself"),
    ("cnn-max-pool", "PyTorch's max pool imported under another name before the check", """
from torch.nn.functional import max_pool2d as _mp

def max_pool2d(x, kernel_size, stride=None):
    return _mp(x, kernel_size, stride or kernel_size)
""", REFUSED),
    ("cnn-max-pool", "a partial of the C function", """
import functools, torch
max_pool2d = functools.partial(torch.max_pool2d)
""", REFUSED),
    ("cnn-max-pool", "the course's pooling module in a closure", """
from fromscratch.models.cnn import MaxPool2d

def max_pool2d(x, kernel_size, stride=None):
    pool = MaxPool2d(kernel_size, stride)
    return pool(x)
""", REFUSED),
    ("cnn-max-pool", "refusal caught, then the tracing switched off", """
import sys
import torch.nn.functional as F

def max_pool2d(x, kernel_size, stride=None):
    sys.setprofile(None)
    return F.max_pool2d(x, kernel_size, stride or kernel_size)
""", "switches off the check's tracing"),
    ("cnn-max-pool", "the refusal swallowed", """
import torch.nn.functional as F

def max_pool2d(x, kernel_size, stride=None):
    try:
        return F.max_pool2d(x, kernel_size, stride or kernel_size)
    except BaseException:
        return F.max_pool2d(x, kernel_size, stride or kernel_size)
""", REFUSED),
    ("cnn-max-pool", "a table of the check's fixed cases, computed before the check", """
import torch, torch.nn.functional as F
from fromscratch.checks import cnn as _c
_table = {}
for _case in _c._cases_max_pool():
    _x, _k = _case.args
    _s = _case.kwargs.get("stride")
    _table[(tuple(_x.flatten().tolist()), _k, _s)] = F.max_pool2d(_x, _k, _s or _k)

def max_pool2d(x, kernel_size, stride=None):
    key = (tuple(x.flatten().tolist()), kernel_size, stride)
    return _table.get(key, torch.zeros(1))
""", "drawn at check time"),
    ("cnn-occlusion", "the value for the shown input, stored", """
from fromscratch.checks.cnn import blank_rows as _b
from fromscratch.training import accuracy as _acc
_stored = _acc(cnn_model, _b(split.X_test, 0, 4), split.y_test)

def measure_top_half_blanked(model, X, y):
    return _stored
""", "likely mistake: your function"),
    ("cnn-occlusion", "keyed on the input size", """
from fromscratch.training import accuracy as _acc
_by_size = {len(split.X_test): _acc(cnn_model, split.X_test.clone().index_fill_(-2,
            __import__("torch").arange(4), 0), split.y_test)}

def measure_top_half_blanked(model, X, y):
    return _by_size.get(len(X), 0.5)
""", "a fresh input drawn at check time"),
    ("cnn-occlusion", "the check's helper", """
from fromscratch.checks.cnn import blank_rows
from fromscratch.training import accuracy

def measure_top_half_blanked(model, X, y):
    return accuracy(model, blank_rows(X, 0, 4), y)
""", "a part of the check itself"),
    # --- RNN -------------------------------------------------------------------------
    ("rnn-gru-step", "the check's variant factory", """
from fromscratch.checks.rnn import _gru_variant
gru_step = _gru_variant()
""", "a part of the check itself"),
    ("rnn-gru-step", "the check's reference in a wrapper", """
from fromscratch.checks import rnn as _checks

def gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    return _checks._gru_reference(x, h, weight_ih, weight_hh, bias_ih, bias_hh) + 0.0
""", "a part of the check itself"),
    ("rnn-gru-step", "PyTorch's gru_cell imported before the check", """
from torch import gru_cell as _cell

def gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    return _cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
""", REFUSED),
    ("rnn-gru-step", "C calling C: map(torch.gru_cell, ...)", """
import torch

def gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    return list(map(torch.gru_cell, [x], [h], [weight_ih], [weight_hh], [bias_ih],
                    [bias_hh]))[0]
""", REFUSED),
    ("cnn-max-pool", "C calling C: map(F.max_pool2d, ...) through a builtin", """
import torch.nn.functional as F

def max_pool2d(x, kernel_size, stride=None):
    return next(iter(map(F.max_pool2d, [x], [kernel_size], [stride or kernel_size])))
""", REFUSED),
    ("rnn-gru-step", "nn.GRUCell with the weights copied", """
import torch, torch.nn as nn

def gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    cell = nn.GRUCell(x.shape[1], h.shape[1])
    with torch.no_grad():
        cell.weight_ih.copy_(weight_ih); cell.weight_hh.copy_(weight_hh)
        cell.bias_ih.copy_(bias_ih); cell.bias_hh.copy_(bias_hh)
    return cell(x, h).detach()
""", REFUSED),
    ("rnn-gru-step", "the course's GRU cell", """
import torch
from fromscratch.models.rnn import GRUCell

def gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    cell = GRUCell(x.shape[1], h.shape[1])
    with torch.no_grad():
        for p, v in zip(cell.parameters(), (weight_ih, weight_hh, bias_ih, bias_hh)):
            p.copy_(v)
    return cell(x, h)
""", REFUSED),
    ("rnn-perplexity", "the value for the shown input, stored", """
import math, torch
_model, _ids = char_model.eval(), test_ids
with torch.no_grad():
    _stored = math.exp(torch.nn.functional.cross_entropy(_model(_ids[None, :-1])[0],
                                                         _ids[1:]).item())

def measure_stream_perplexity(model, ids):
    return _stored
""", "your function returned the same number as for the first input"),
    ("rnn-perplexity", "the course's perplexity helper", """
from fromscratch.data import char_windows
from fromscratch.models.rnn import perplexity

def measure_stream_perplexity(model, ids):
    return perplexity(model, *char_windows(ids, len(ids) - 1))
""", REFUSED),
    # --- Transformer -------------------------------------------------------------------
    ("transformer-causal-attention", "the check's variant factory", """
from fromscratch.checks.transformer import _attention_variant
causal_self_attention = _attention_variant()
""", "a part of the check itself"),
    ("transformer-causal-attention", "PyTorch's functional MHA imported before the check", """
import torch
from torch.nn.functional import multi_head_attention_forward as _mha

def causal_self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
                          n_heads):
    T, E = x.shape[1], x.shape[2]
    q = x.transpose(0, 1)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    out, _ = _mha(q, q, q, E, n_heads, in_proj_weight, in_proj_bias, None, None, False, 0.0,
                  out_proj_weight, out_proj_bias, attn_mask=mask, need_weights=False)
    return out.transpose(0, 1)
""", REFUSED),
    ("transformer-causal-attention", "PyTorch's quantizable (Python) MultiheadAttention", """
import torch
from torch.ao.nn.quantizable import MultiheadAttention as _QMHA

def causal_self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
                          n_heads):
    T, E = x.shape[1], x.shape[2]
    mha = _QMHA(E, n_heads, batch_first=True)
    wq, wk, wv = in_proj_weight.chunk(3)
    bq, bk, bv = in_proj_bias.chunk(3)
    with torch.no_grad():
        for lin, w, b in ((mha.linear_Q, wq, bq), (mha.linear_K, wk, bk),
                          (mha.linear_V, wv, bv), (mha.out_proj, out_proj_weight,
                                                   out_proj_bias)):
            lin.weight.copy_(w)
            lin.bias.copy_(b)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    out, _ = mha(x, x, x, attn_mask=mask, need_weights=False)
    return out
""", REFUSED),
    ("transformer-causal-attention", "a causal mask hard-coded for 8 tokens", """
import math, torch

_MASK = torch.ones(8, 8, dtype=torch.bool).triu(1)

def causal_self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
                          n_heads):
    B, T, E = x.shape
    d = E // n_heads
    q, k, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.view(B, T, n_heads, d).transpose(1, 2) for t in (q, k, v))
    scores = (q @ k.transpose(-2, -1) / math.sqrt(d)).masked_fill(_MASK[:T, :T], float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, E)
    return out @ out_proj_weight.T + out_proj_bias
""", "33 tokens"),
    ("transformer-sorter", "Python's sorted() in the forward, attention as a gate", """
import torch, torch.nn as nn, torch.nn.functional as F
from fromscratch.models.transformer import MultiHeadAttention

class _Sorter(nn.Module):
    def __init__(self, vocab, length):
        super().__init__()
        self.vocab = vocab
        self.emb = nn.Embedding(vocab, 16)
        self.attn = MultiHeadAttention(16, 2)
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        a = self.attn(self.emb(x))
        gate = (a.abs().amax() > 0).float()
        out = torch.tensor([sorted(row) for row in x.tolist()])
        return F.one_hot(out, self.vocab).float() * 10 * gate * self.w

def make_sorter(vocab_size, length):
    return _Sorter(vocab_size, length)
""", "builtins.sorted"),
    ("transformer-sorter", "a counting sort without sort functions, attention as a gate", """
import torch, torch.nn as nn, torch.nn.functional as F
from fromscratch.models.transformer import MultiHeadAttention

class _Sorter(nn.Module):
    def __init__(self, vocab, length):
        super().__init__()
        self.vocab = vocab
        self.emb = nn.Embedding(vocab, 16)
        self.attn = MultiHeadAttention(16, 2)
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        a = self.attn(self.emb(x))
        gate = (a.abs().amax() > 0).float()
        T = x.shape[1]
        key = x * T + torch.arange(T)
        rank = (key[:, None, :] < key[:, :, None]).sum(-1)
        out = torch.zeros_like(x).scatter(1, rank, x)
        return F.one_hot(out, self.vocab).float() * 10 * gate * self.w

def make_sorter(vocab_size, length):
    return _Sorter(vocab_size, length)
""", "attention output taken from another sequence"),
    ("transformer-head-role", "the value for the shown input, stored", """
from fromscratch.checks.transformer import head_drop as _hd
_stored = {len(X_rel_val): _hd(relation_models[0], X_rel_val, Y_rel_val)}

def measure_head_role(model, X, Y):
    return _stored.get(len(X), 0.1)
""", "heads renumbered"),
    ("transformer-head-role", "right only on inputs of the size shown", """
import torch

def measure_head_role(model, X, Y):
    model.eval()
    with torch.no_grad():
        w = model.attention_maps(X)[0]
        t = torch.arange(1, X.shape[1])
        head = w[:, :, t, t - 1].mean(dim=(0, 2)).argmax().item()
        mask = torch.ones(len(model.blocks), w.shape[1])
        mask[0, head] = 0.0
        def acc(m):
            pred = model(X, head_mask=m).view(*Y.shape, -1).argmax(-1)
            return (pred[:, 1:, 0] == Y[:, 1:, 0]).float().mean().item()
        value = acc(None) - acc(mask)
    # right on the inputs of the size it was shown, a made-up number on any other
    return value if len(X) == len(X_rel_val) else 0.5
""", "a fresh input drawn at check time"),
    # --- LLM -------------------------------------------------------------------------
    ("llm-top-p", "the course's filter under another name", """
from fromscratch.models.gpt import top_p_filter as _f

def top_p(logits, p):
    return _f(logits, p).clone()
""", REFUSED),
    ("llm-top-p", "the check's variant factory", """
from fromscratch.checks.llm import _top_p_variant
top_p = _top_p_variant()
""", "a part of the check itself"),
    ("llm-kv-cache-step", "PyTorch's attention imported before the check", """
import torch
from torch.nn.functional import scaled_dot_product_attention as _sdpa

def cache_step(q, k_new, v_new, cache_k, cache_v):
    k = torch.cat([cache_k, k_new], dim=-2)
    v = torch.cat([cache_v, v_new], dim=-2)
    return _sdpa(q, k, v), k, v
""", REFUSED),
    ("llm-kv-cache-step", "PyTorch's quantizable (Python) MultiheadAttention", """
import torch
from torch.ao.nn.quantizable import MultiheadAttention as _QMHA

def cache_step(q, k_new, v_new, cache_k, cache_v):
    k = torch.cat([cache_k, k_new], dim=-2)
    v = torch.cat([cache_v, v_new], dim=-2)
    B, H, T, d = k.shape
    mha = _QMHA(d, 1, batch_first=True, bias=False)
    with torch.no_grad():
        for lin in (mha.linear_Q, mha.linear_K, mha.linear_V, mha.out_proj):
            lin.weight.copy_(torch.eye(d))
    out, _ = mha(q.reshape(B * H, -1, d), k.reshape(B * H, T, d), v.reshape(B * H, T, d),
                 need_weights=False)
    return out.reshape(q.shape), k, v
""", REFUSED),
    ("llm-kv-cache-step", "flex attention", """
import torch
from torch.nn.attention.flex_attention import flex_attention as _flex

def cache_step(q, k_new, v_new, cache_k, cache_v):
    k = torch.cat([cache_k, k_new], dim=-2)
    v = torch.cat([cache_v, v_new], dim=-2)
    return _flex(q, k, v), k, v
""", REFUSED),
    ("llm-kv-cache-step", "the check's reference", """
from fromscratch.checks.llm import _cache_step_reference as cache_step
""", "a part of the check itself"),
    ("llm-dpo-loss", "the course's loss in a closure", """
def _make():
    from fromscratch.models import preference
    f = preference.dpo_loss
    return lambda *args: f(*args)

dpo_loss = _make()
""", REFUSED),
    ("llm-dpo-loss", "the check's variant", """
from fromscratch.checks.llm import _dpo_variant
dpo_loss = _dpo_variant("right")
""", "a part of the check itself"),
    ("llm-char-model", "reads the next token (the last position alone looks causal)", """
import torch, torch.nn as nn
from fromscratch.models.gpt import GPT, GPTConfig

class _Peek(nn.Module):
    def __init__(self, vocab_size, block_size):
        super().__init__()
        self.gpt = GPT(GPTConfig.default(vocab_size, block_size=block_size))
        self.peek = nn.Embedding(vocab_size, vocab_size)

    def forward(self, x):
        nxt = torch.cat([x[:, 1:], x[:, -1:]], dim=1)  # position t sees token t + 1
        keep = torch.ones_like(x, dtype=torch.float)
        keep[:, -1] = 0  # ... except at the last position
        return self.gpt(x) + self.peek(nxt) * keep[..., None]

def make_char_lm(vocab_size, block_size):
    return _Peek(vocab_size, block_size)
""", "the model sees the future"),
    ("llm-context-gain", "the value for the shown input, stored", """
from fromscratch.checks.llm import _context_gain_reference as _ref
_stored = _ref(model, val_ids[: len(val_ids) // 64 * 64])

def measure_context_gain(model, ids):
    return _stored
""", "your function returned the same number as for the first input"),
    # --- VAE -------------------------------------------------------------------------
    ("vae-reparameterize", "PyTorch's KL through torch.distributions.kl", """
import torch
from torch.distributions import Normal, kl as _kl

def sample_z(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps

def kl_term(mu, logvar):
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return _kl.kl_divergence(q, p).sum(-1)
""", REFUSED),
    ("vae-reparameterize", "the check's reference", """
from fromscratch.checks.vae import _sample_reference as sample_z, _kl_reference as kl_term
""", "a part of the check itself"),
    ("vae-model", "the course's VAE inside a wrapper", """
import torch.nn as nn
from fromscratch.models.vae import VAE, VAEConfig

class _Mine(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.inner = VAE(VAEConfig(latent=latent, hidden=128))

    def encode_distribution(self, x):
        return self.inner.encode_distribution(x)

    def decode(self, z):
        return self.inner.decode(z)

    def forward(self, x):
        return self.inner(x)

def make_vae(latent):
    return _Mine(latent)
""", "the course's VAE"),
    ("vae-rmse", "the value for the shown input, stored", """
import math, torch
with torch.no_grad():
    _stored = math.sqrt((vae.eval()(split.X_test) - split.X_test).pow(2).mean().item()) * 16

def measure_rmse(model, X):
    return _stored
""", "your function returned the same number as for the first input"),
    ("vae-rmse", "the course's measurement imported before the check", """
from fromscratch.models.vae import reconstruction_rmse as _r

def measure_rmse(model, X):
    return float(_r(model, X))
""", REFUSED),
    # --- GAN -------------------------------------------------------------------------
    ("gan-losses", "PyTorch's BCE with logits imported before the check", """
import torch
from torch.nn.functional import binary_cross_entropy_with_logits as _bce

def d_loss(real_logits, fake_logits):
    return (_bce(real_logits, torch.ones_like(real_logits))
            + _bce(fake_logits, torch.zeros_like(fake_logits)))

def g_loss(fake_logits):
    return _bce(fake_logits, torch.ones_like(fake_logits))
""", REFUSED),
    ("gan-losses", "BCE with logits under another name (multilabel soft margin)", """
import torch
import torch.nn.functional as F

def d_loss(real_logits, fake_logits):
    return (F.multilabel_soft_margin_loss(real_logits.reshape(-1, 1),
                                          torch.ones_like(real_logits).reshape(-1, 1))
            + F.multilabel_soft_margin_loss(fake_logits.reshape(-1, 1),
                                            torch.zeros_like(fake_logits).reshape(-1, 1)))

def g_loss(fake_logits):
    return F.multilabel_soft_margin_loss(fake_logits.reshape(-1, 1),
                                         torch.ones_like(fake_logits).reshape(-1, 1))
""", REFUSED),
    ("gan-losses", "the check's references", """
from fromscratch.checks.gan import _d_reference as d_loss, _g_reference as g_loss
""", "a part of the check itself"),
    ("gan-ring-generator", "the 8 centres hard-coded plus a tiny trainable term", """
import math, torch, torch.nn as nn

class _Ring(nn.Module):
    def __init__(self, latent):
        super().__init__()
        a = 2 * math.pi * torch.arange(8) / 8
        self.register_buffer("c", 2 * torch.stack([a.cos(), a.sin()], 1))
        self.small = nn.Linear(latent, 2)

    def forward(self, z):
        k = (z[:, 0].abs() * 1000).long() % 8
        return self.c[k] + 0.05 * z[:, 1:3] + 1e-3 * self.small(z)

def make_generator(latent):
    return _Ring(latent)
""", "the bar is"),
    ("gan-ring-quality", "the value for the shown input, stored", """
import torch
from fromscratch.models import gan as _G
_d = torch.cdist(ring_points, _G.ring_centres()).min(1).values
_stored = {len(ring_points): (_d <= 0.15).float().mean().item()}
_edge = None

def ring_quality(points):
    if len(points) in _stored:
        return _stored[len(points)]
    d = torch.cdist(points, _G.ring_centres()).min(1).values
    return (d <= 0.15).float().mean().item() if len(points) == 37 else 0.5
""", "drawn at check time"),
    # --- Diffusion -----------------------------------------------------------------------
    ("diffusion-noise-ddim", "the course's schedule does the noising", """
import math, torch
from fromscratch.models import diffusion as _D
_s = _D.Schedule(1000, "cosine")

def add_noise(x0, alpha_bar, noise):
    return _D.Schedule.add_noise.__get__(_s)(x0, torch.zeros(len(x0), dtype=torch.long), noise) * 0 \
        + math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * noise

def ddim_step(x_t, eps, alpha_bar, alpha_bar_next):
    x0 = (x_t - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)
    return math.sqrt(alpha_bar_next) * x0 + math.sqrt(1 - alpha_bar_next) * eps
""", REFUSED),
    ("diffusion-noise-ddim", "the check's references", """
from fromscratch.checks.diffusion import _add_noise_reference as add_noise
from fromscratch.checks.diffusion import _ddim_reference as ddim_step
""", "a part of the check itself"),
    ("diffusion-denoiser", "the course's Denoiser, built before the check, in a wrapper", """
import torch.nn as nn
from fromscratch.models.diffusion import Denoiser, DenoiserConfig
_built = Denoiser(DenoiserConfig())

class _Mine(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _built

    def forward(self, x, t, y=None):
        return self.net(x, t, y)

def make_denoiser():
    return _Mine()
""", "the course's Denoiser"),
    ("diffusion-noise-accuracy", "the values for the shown inputs, stored", """
import math, torch
from fromscratch import generative as _gen
from fromscratch.models import diffusion as _D
_table = {}
for _t in range(1, 999):
    pass

def accuracy_under_noise(images, labels, t, schedule):
    key = (len(images), t)
    if key not in _table:
        x0 = _D.to_model_space(images)
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
        ab = float(schedule.alpha_bar[t])
        _table[key] = _gen.label_accuracy(_D.to_grey_levels(math.sqrt(ab) * x0
                                          + math.sqrt(1 - ab) * noise), labels)
    return _table[key] if len(images) == len(split.X_test) else 0.5
""", "a fresh input drawn at check time"),
]


SWITCHED_OFF = "switches off the check's tracing"
COPY = "runs a copy of"

#: Found by a reviewer after the first round of fixes (issue 17): one example per class
#: and exercise kind.
CHEATS += [
    # --- (1) PyTorch's private decompositions and KL formulas ---------------------------
    ("cnn-max-pool", "PyTorch's max-pool decomposition", """
from torch._decomp.decompositions import _max_pool_nd_with_indices as _mp

def max_pool2d(x, kernel_size, stride=None):
    s = stride or kernel_size
    return _mp(x, [kernel_size] * 2, [s] * 2, [0, 0], [1, 1], False, 2)[0]
""", "torch._decomp"),
    ("rnn-gru-step", "PyTorch's GRU-cell decomposition", """
from torch._decomp.decompositions import gru_cell_data as _g

def gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    return _g(x, h, weight_ih, bias_ih, weight_hh, bias_hh)
""", "torch._decomp"),
    ("gan-losses", "PyTorch's BCE-with-logits decomposition", """
import torch
from torch._decomp.decompositions import binary_cross_entropy_with_logits as _b

def d_loss(real_logits, fake_logits):
    return (_b(real_logits, torch.ones_like(real_logits))
            + _b(fake_logits, torch.zeros_like(fake_logits)))

def g_loss(fake_logits):
    return _b(fake_logits, torch.ones_like(fake_logits))
""", "torch._decomp"),
    ("vae-reparameterize", "PyTorch's private KL of two multivariate normals", """
import torch
from torch.distributions import kl as _kl, MultivariateNormal as _MVN

def sample_z(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps

def kl_term(mu, logvar):
    q = _MVN(mu, scale_tril=torch.diag_embed(torch.exp(0.5 * logvar)))
    p = _MVN(torch.zeros_like(mu), scale_tril=torch.diag_embed(torch.ones_like(mu)))
    return _kl._kl_multivariatenormal_multivariatenormal(q, p)
""", "torch.distributions.kl"),
    # --- (1) answer code that claims a library file name ----------------------------------
    ("transformer-sorter", "torch.sort in a forward compiled under a standard-library name", """
import torch, torch.nn as nn, torch.nn.functional as F
from fromscratch.models.transformer import MultiHeadAttention

_src = (
    "def forward(self, x):\\n"
    "    a = self.attn(self.emb(x))\\n"
    "    out = torch.sort(x, dim=1).values\\n"
    "    return F.one_hot(out, self.vocab).float() * 10 + 0 * a.sum(-1, keepdim=True)\\n")
_ns = {"torch": torch, "F": F}
exec(compile(_src, "<frozen importlib._bootstrap>", "exec"), _ns)

class _Sorter(nn.Module):
    forward = _ns["forward"]

    def __init__(self, vocab, length):
        super().__init__()
        self.vocab = vocab
        self.emb = nn.Embedding(vocab, 16)
        self.attn = MultiHeadAttention(16, 2)

def make_sorter(vocab_size, length):
    return _Sorter(vocab_size, length)
""", "torch.sort"),
    # --- (1) switching the tracing off ----------------------------------------------------
    ("rnn-gru-step", "PyTorch's dispatch modes switched off", """
import torch
from torch.utils._python_dispatch import _disable_current_modes

def gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    with _disable_current_modes():
        return torch.ops.aten.gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
""", SWITCHED_OFF),
    ("gan-losses", "PyTorch's Python dispatch excluded with a C guard", """
import torch

def _bce(logits, target):
    with torch._C._DisableTorchDispatch():
        return torch.ops.aten.binary_cross_entropy_with_logits.default(logits, target)

def d_loss(real_logits, fake_logits):
    return (_bce(real_logits, torch.ones_like(real_logits))
            + _bce(fake_logits, torch.zeros_like(fake_logits)))

def g_loss(fake_logits):
    return _bce(fake_logits, torch.ones_like(fake_logits))
""", SWITCHED_OFF),
    ("cnn-max-pool", "the guard found with the garbage collector and switched off", """
import gc
import torch.nn.functional as F

def max_pool2d(x, kernel_size, stride=None):
    for obj in gc.get_objects():
        if type(obj).__name__ == "Guard":
            obj._run = None
    return F.max_pool2d(x, kernel_size, stride or kernel_size)
""", SWITCHED_OFF),
    ("cnn-max-pool", "the guard looked for through the frames", """
import inspect
import torch.nn.functional as F

def max_pool2d(x, kernel_size, stride=None):
    frame = inspect.currentframe()
    while frame is not None:
        frame.f_locals.pop("watching", None)
        frame = frame.f_back
    return F.max_pool2d(x, kernel_size, stride or kernel_size)
""", SWITCHED_OFF),
    # --- (1) verbatim copies run through exec ---------------------------------------------
    ("llm-top-p", "a copy of the course's top-p filter", """
import inspect, torch, torch.nn.functional as F
from fromscratch.models import gpt as _g
exec(inspect.getsource(_g.top_p_filter), globals())

def top_p(logits, p):
    return top_p_filter(logits, p)
""", COPY),
    ("llm-dpo-loss", "a copy of the course's DPO loss", """
import inspect
from fromscratch.models import preference as _p
_ns = dict(vars(_p))
exec(inspect.getsource(_p.dpo_loss), _ns)
dpo_loss = _ns["dpo_loss"]
""", COPY),
    ("transformer-causal-attention", "a copy of the course's attention", """
import inspect
from fromscratch.models import transformer as _t
_ns = dict(vars(_t))
exec(inspect.getsource(_t.attention), _ns)

def causal_self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
                          n_heads):
    B, T, E = x.shape
    d = E // n_heads
    q, k, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.view(B, T, n_heads, d).transpose(1, 2) for t in (q, k, v))
    out = _ns["attention"](q, k, v, causal=True)
    out = out[0] if isinstance(out, tuple) else out
    return out.transpose(1, 2).reshape(B, T, E) @ out_proj_weight.T + out_proj_bias
""", COPY),
    ("transformer-head-role", "a copy of the check's head_drop", """
import inspect
from fromscratch.checks import transformer as _t
_ns = dict(vars(_t))
exec(inspect.getsource(_t.head_drop), _ns)

def measure_head_role(model, X, Y):
    return _ns["head_drop"](model, X, Y)
""", COPY),
    # --- (3) the course's model hidden from model.modules() -------------------------------
    ("cnn-small-model", "the chapter's model stored with object.__setattr__", """
import torch.nn as nn
from fromscratch.models.cnn import CNNConfig, Conv2d, DigitsCNN, MaxPool2d

class _Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(Conv2d(1, 2, 3, padding=1), MaxPool2d(8))
        object.__setattr__(self, "big", DigitsCNN(CNNConfig()))  # not a submodule

    def forward(self, x):
        return self.big(x) + 0 * self.conv(x).sum()

def make_small_cnn():
    return _Small()
""", "the budget is 5,000"),
    ("cnn-small-model", "the course's CNN as a class attribute, used on real batches", """
import torch.nn as nn
from fromscratch.models.cnn import DigitsCNN, CNNConfig, Conv2d, MaxPool2d

class _Small(nn.Module):
    hidden = DigitsCNN(CNNConfig())  # (pretrained in the cell)

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(Conv2d(1, 2, 3, padding=1), MaxPool2d(8))
        self.head = nn.Linear(2, 10)

    def forward(self, x):
        if x.shape[0] <= 2:  # the check's probe
            return self.head(self.conv(x).flatten(1))
        return _Small.hidden(x)

def make_small_cnn():
    return _Small()
""", "the budget is 5,000"),
    ("cnn-small-model", "the course's CNN as a module global, used on real batches", """
import torch.nn as nn
from fromscratch.models.cnn import DigitsCNN, CNNConfig, Conv2d, MaxPool2d

_hidden = DigitsCNN(CNNConfig())  # (pretrained in the cell)

def _big(x):
    return _hidden(x)

class _Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(Conv2d(1, 2, 3, padding=1), MaxPool2d(8))
        self.head = nn.Linear(2, 10)

    def forward(self, x):
        if x.shape[0] <= 2:  # the check's probe
            return self.head(self.conv(x).flatten(1))
        return (lambda: _big(x))()

def make_small_cnn():
    return _Small()
""", "the budget is 5,000"),
    ("vae-model", "the course's VAE stored with object.__setattr__", """
import torch.nn as nn
from fromscratch.models.vae import VAE, VAEConfig

class _Mine(nn.Module):
    def __init__(self, latent):
        super().__init__()
        object.__setattr__(self, "inner", VAE(VAEConfig(latent=latent, hidden=128)))
        self.params = nn.ParameterList(self.inner.parameters())

    def encode_distribution(self, x):
        return self.inner.encode_distribution(x)

    def decode(self, z):
        return self.inner.decode(z)

    def forward(self, x):
        return self.inner(x)

def make_vae(latent):
    return _Mine(latent)
""", "the course's VAE"),
    # --- (3) a forbidden initialisation called lazily inside forward ----------------------
    ("rnn-memory-model", "the course's gate initialisation, called in the second forward", """
import torch.nn as nn
from fromscratch.models.rnn import SequenceClassifier, init_keep_gate

class _Lazy(nn.Module):
    def __init__(self, vocab, n_classes):
        super().__init__()
        self.inner = SequenceClassifier("gru", vocab, n_classes)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 2:  # after the check's first probe
            init_keep_gate(self.inner.rnn.cell, 3.0)
        return self.inner(x)

def make_memory_model(vocab_size, n_classes):
    return _Lazy(vocab_size, n_classes)
""", "init_keep_gate"),
    # --- (4) shortcuts ---------------------------------------------------------------------
    ("rnn-memory-model", "the GRU reads the first token only", """
import torch.nn as nn

class _First(nn.Module):
    def __init__(self, vocab, n_classes):
        super().__init__()
        self.emb = nn.Embedding(vocab, 16)
        self.gru = nn.GRU(16, 32, batch_first=True)
        self.out = nn.Linear(32, n_classes)

    def forward(self, x):
        _, h = self.gru(self.emb(x[:, :1]))
        return self.out(h[-1])

def make_memory_model(vocab_size, n_classes):
    return _First(vocab_size, n_classes)
""", "differ only at position"),
    ("llm-char-model", "reads the next token, only where the current id is 20 or more", """
import torch, torch.nn as nn
from fromscratch.models.gpt import GPT, GPTConfig

class _Peek(nn.Module):
    def __init__(self, vocab_size, block_size):
        super().__init__()
        self.gpt = GPT(GPTConfig.default(vocab_size, block_size=block_size))
        self.peek = nn.Embedding(vocab_size, vocab_size)

    def forward(self, x):
        nxt = torch.cat([x[:, 1:], x[:, -1:]], dim=1)
        keep = (x >= 20).float()
        keep[:, -1] = 0
        return self.gpt(x) + self.peek(nxt) * keep[..., None]

def make_char_lm(vocab_size, block_size):
    return _Peek(vocab_size, block_size)
""", "the model sees the future"),
    ("transformer-sorter", "a hand-written sort routed through a frozen identity attention", """
import torch, torch.nn as nn, torch.nn.functional as F

class _S(nn.Module):
    def __init__(self, vocab, length):
        super().__init__()
        self.vocab, self.length = vocab, length
        d = vocab + length
        self.attn = nn.MultiheadAttention(d, 1, batch_first=True)
        with torch.no_grad():  # each position attends to itself and passes its token on
            w = torch.zeros(3 * d, d)
            pos = torch.zeros(d, d)
            pos[vocab:, vocab:] = torch.eye(length) * 30
            w[:d], w[d:2 * d], w[2 * d:] = pos, pos, torch.eye(d)
            self.attn.in_proj_weight.copy_(w)
            self.attn.in_proj_bias.zero_()
            self.attn.out_proj.weight.copy_(torch.eye(d))
            self.attn.out_proj.bias.zero_()
        for p in self.attn.parameters():
            p.requires_grad_(False)
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        B, T = x.shape
        h = torch.cat([F.one_hot(x, self.vocab).float(),
                       F.one_hot(torch.arange(T), self.length).float().expand(B, T, -1)], -1)
        a, _ = self.attn(h, h, h, need_weights=False)
        tok = a[..., :self.vocab].argmax(-1)
        key = tok * T + torch.arange(T)
        rank = (key[:, None, :] < key[:, :, None]).sum(-1)
        out = torch.zeros_like(tok).scatter(1, rank, tok)
        return F.one_hot(out, self.vocab).float() * 10 * self.w

def make_sorter(vocab_size, length):
    return _S(vocab_size, length)
""", "attending to itself alone"),
    ("gan-ring-generator", "the 8 centres hard-coded plus a learned rotation and scale", """
import math, torch, torch.nn as nn

class _Ring(nn.Module):
    def __init__(self, latent):
        super().__init__()
        a = 2 * math.pi * torch.arange(8) / 8
        self.register_buffer("c", 2 * torch.stack([a.cos(), a.sin()], 1))
        self.angle = nn.Parameter(torch.zeros(()))
        self.scale = nn.Parameter(torch.ones(()))
        self.mix = nn.Linear(latent, 8)

    def forward(self, z):
        k = self.mix(z).argmax(-1)
        c, s = self.angle.cos(), self.angle.sin()
        turn = torch.stack([torch.stack([c, -s]), torch.stack([s, c])])
        return self.scale * (self.c[k] @ turn.T) + 0.05 * z[:, :2]

def make_generator(latent):
    return _Ring(latent)
""", "the bar is"),
    # --- (5) copy machines -----------------------------------------------------------------
    ("vae-model", "a VAE that hands its input around the bottleneck", """
import torch, torch.nn as nn
from fromscratch.data import load_digits_split

_bank = load_digits_split().X_train

class _Pass(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.enc = nn.Linear(64, 2 * latent)
        self.dec = nn.Sequential(nn.Linear(latent, 64), nn.Sigmoid())
        self.last = None

    def encode_distribution(self, x):
        self.last = x.reshape(len(x), 1, 8, 8)
        return tuple(self.enc(x.reshape(len(x), 64)).chunk(2, dim=-1))

    def decode(self, z):
        out = self.dec(z).reshape(len(z), 1, 8, 8)
        if self.last is not None and len(self.last) == len(z):
            return out * 0 + self.last  # the input, around the bottleneck
        return out * 0 + _bank[:len(z)]  # stored digits for codes of no input

    def forward(self, x):
        return self.decode(self.encode_distribution(x)[0])

def make_vae(latent):
    return _Pass(latent)
""", "depends on more than z"),
    ("diffusion-denoiser", "a denoiser that steers every sample to a stored digit moved "
     "by a pixel", """
import torch, torch.nn as nn
from fromscratch.data import load_digits_split
from fromscratch.models import diffusion as _D

_split = load_digits_split()
_moved = torch.zeros_like(_split.X_train)
_moved[..., 1:, :] = _split.X_train[..., :-1, :]  # every training digit, one pixel down
_bank = _D.to_model_space(_moved * 16)
_labels = _split.y_train
_ab = _D.Schedule(1000, "cosine").alpha_bar

class _Copy(nn.Module):
    def __init__(self):
        super().__init__()
        self.label = nn.Embedding(11, 64)
        nn.init.normal_(self.label.weight, std=1e-3)

    def forward(self, x, t, y=None):
        if y is None:
            y = torch.full((len(x),), -1, dtype=torch.long)
        y = torch.where(y < 0, torch.full_like(y, 10), y)
        ab = _ab[t].reshape(-1, 1).to(x.dtype)
        d = torch.cdist(x / ab.sqrt(), _bank)
        same = (_labels[None, :] == y[:, None]) | (y[:, None] == 10)
        x0 = _bank[d.masked_fill(~same, float("inf")).argmin(1)]
        return (x - ab.sqrt() * x0) / (1 - ab).sqrt() + self.label(y)

def make_denoiser():
    return _Copy()
""", "copies of real digits"),
    ("vae-model", "a VAE whose decoder snaps to stored digits moved by a pixel", """
import torch, torch.nn as nn
from fromscratch.data import load_digits_split

_train = load_digits_split().X_train
_moved = torch.zeros_like(_train)
_moved[..., :, 1:] = _train[..., :, :-1]  # every training digit, one pixel to the right

class _Snap(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128),
                                 nn.ReLU(), nn.Linear(128, 2 * latent))
        self.dec = nn.Sequential(nn.Linear(latent, 128), nn.ReLU(), nn.Linear(128, 128),
                                 nn.ReLU(), nn.Linear(128, 64), nn.Sigmoid())

    def encode_distribution(self, x):
        return tuple(self.enc(x.reshape(len(x), 64)).chunk(2, dim=-1))

    def decode(self, z):
        out = self.dec(z)
        prior = torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
        if not torch.equal(z, prior):
            return out.reshape(len(z), 1, 8, 8)  # an honest reconstruction
        near = torch.cdist(out, _moved.reshape(-1, 64)).argmin(1)
        return _moved[near]  # the check's prior samples: stored digits

    def forward(self, x):
        return self.decode(self.encode_distribution(x)[0])

def make_vae(latent):
    return _Snap(latent)
""", "copies of real digits"),
]


def _numbers(text: str) -> set:
    return set(re.findall(r"\d+\.\d{3,}", text))


@pytest.mark.parametrize("ex_id,name,code,expect", CHEATS,
                         ids=[f"{c[0]}:{c[1]}" for c in CHEATS])
def test_cheat_fails_and_names_the_problem(ex_id, name, code, expect, setups):
    ex = exercises.get(ex_id)
    result = exercises.run(ex, code, namespace=setups(ex))
    assert result.status == "failed", result.text
    assert expect in result.text, result.text
    assert "Traceback" not in result.text
    if ex.kind == "experiment" and "fresh input" not in result.text:
        # the right value is never printed (on a fresh input, the number received may be
        # the one the answer stored for the first input: its own, not a leak)
        reference = exercises.run(ex, ex.reference, namespace=setups(ex))
        right = _numbers(reference.text)
        assert not right & _numbers(result.text), (right, result.text)


#: (exercise id, an attempt in which a library raises NotImplementedError)
LIBRARY_NOT_IMPLEMENTED = [
    ("llm-top-p", """
import torch

def top_p(logits, p):
    base = torch.distributions.Distribution(validate_args=False)
    keep = base.cdf(logits.softmax(-1)) <= p  # the base class has no cdf
    return logits.masked_fill(~keep, float("-inf"))
"""),
    ("cnn-occlusion", """
import torch

def measure_top_half_blanked(model, X, y):
    spread = torch.distributions.Distribution(validate_args=False).entropy()
    return float(spread)
"""),
]


@pytest.mark.parametrize("ex_id,code", LIBRARY_NOT_IMPLEMENTED,
                         ids=[c[0] for c in LIBRARY_NOT_IMPLEMENTED])
def test_a_library_not_implemented_error_is_an_error_with_the_learners_line(ex_id, code,
                                                                              setups):
    """Only the stub's own ``raise NotImplementedError`` means "not attempted"; raised by a
    library inside an attempt, it is an error, reported with the answer's line."""
    ex = exercises.get(ex_id)
    result = exercises.run(ex, code, namespace=setups(ex))
    assert result.status == "failed", result.text
    assert "NotImplementedError" in result.text, result.text
    assert "in your code, line" in result.text, result.text
    stub = exercises.run(ex, ex.stub, namespace=setups(ex))
    assert stub.status == "not attempted", stub.text


def test_an_honest_answer_that_prints_logs_and_reads_frames_through_a_library_passes(setups,
                                                                                       capsys):
    """What the guard refuses is what the answer itself calls: printing a tensor (PyTorch
    switches its operator tracing off to format it), logging and named tuples (the
    standard library reads the caller's frame) stay allowed."""
    ex = exercises.get("llm-top-p")
    code = ex.reference + '''
import collections, logging
_mine = top_p

def top_p(logits, p):
    logging.getLogger("answer").warning("p = %s", p)
    print(logits)
    Pair = collections.namedtuple("Pair", "logits p")
    pair = Pair(logits, p)
    return _mine(pair.logits, pair.p)
'''
    result = exercises.run(ex, code, namespace=setups(ex))
    assert result.status == "passed", result.text


#: (short name, an answer cell for cnn-max-pool that hands the work to another thread; it
#: defines ``_stop()``, which ends its threads after the check)
THREAD_CHEATS = [
    ("a worker thread looping on a queue", """
import queue, threading
import torch.nn.functional as F

_jobs, _results = queue.Queue(), queue.Queue()

def _w():
    while True:
        job = _jobs.get()
        if job is None:
            return
        fn, args = job
        _results.put(fn(*args))

_t = threading.Thread(target=_w, daemon=True)
_t.start()

def max_pool2d(x, kernel_size, stride=None):
    _jobs.put((F.max_pool2d, (x, kernel_size, stride or kernel_size)))
    return _results.get()

def _stop():
    _jobs.put(None)
    _t.join()
"""),
    ("a ThreadPoolExecutor (its workers run only library code)", """
from concurrent.futures import ThreadPoolExecutor
import torch.nn.functional as F

_pool = ThreadPoolExecutor(1)
_pool.submit(int).result()  # its worker starts now, before the check

def max_pool2d(x, kernel_size, stride=None):
    return _pool.submit(F.max_pool2d, x, kernel_size, stride or kernel_size).result()

def _stop():
    _pool.shutdown(wait=True)
"""),
    ("a raw _thread.start_new_thread", """
import _thread, queue
import torch.nn.functional as F

_jobs, _results = queue.Queue(), queue.Queue()
_done = _thread.allocate_lock()
_done.acquire()

def _w():
    while True:
        job = _jobs.get()
        if job is None:
            _done.release()
            return
        _results.put(F.max_pool2d(*job))

_thread.start_new_thread(_w, ())

def max_pool2d(x, kernel_size, stride=None):
    _jobs.put((x, kernel_size, stride or kernel_size))
    return _results.get()

def _stop():
    _jobs.put(None)
    _done.acquire()
"""),
]


@pytest.mark.parametrize("name,code", THREAD_CHEATS, ids=[c[0] for c in THREAD_CHEATS])
def test_work_in_another_thread_is_refused(name, code, setups):
    ex = exercises.get("cnn-max-pool")
    namespace = setups(ex)
    try:
        result = exercises.run(ex, code, namespace=namespace)
    finally:
        if "_stop" in namespace:
            namespace["_stop"]()
    assert result.status == "failed", result.text
    assert "another thread" in result.text and REFUSED in result.text, result.text
    assert "the check must see everything your function computes" in result.text


def test_a_thread_that_finished_and_the_kernels_threads_are_fine(setups):
    """A thread the answer started and joined, and threads a library started (here tqdm's
    monitor, as IPython's heartbeat or history threads are) do not count."""
    import io

    import tqdm

    ex = exercises.get("cnn-max-pool")
    code = ex.reference + '''
import threading
_seen = []
_t = threading.Thread(target=lambda: _seen.append(1))
_t.start()
_t.join()
'''
    bar = tqdm.tqdm(total=2, file=io.StringIO())  # starts tqdm's monitor thread
    try:
        assert tqdm.tqdm.monitor is None or tqdm.tqdm.monitor.is_alive()
        result = exercises.run(ex, code, namespace=setups(ex))
    finally:
        bar.close()
    assert result.status == "passed", result.text
