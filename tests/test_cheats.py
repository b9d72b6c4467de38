"""Answers a learner hunting for a shortcut might write: each must fail, with feedback that
names the problem and does not give the right value away (issue 17).

The classes: (1) reaching a correct implementation the course ships (the check's own
reference or helpers, the package's model code, PyTorch's equivalent), however it is
reached; (2) copying a measurement from the feedback; (3) the course's model inside a
wrapper; (4) shortcuts that satisfy a probe but not the task."""

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
""", "your function returned the same number as for the first input"),
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
]


@pytest.fixture(scope="module")
def setups():
    cache = {}

    def get(ex):
        if ex.id not in cache:
            ns = {"__name__": "__exercise__"}
            if ex.setup:
                exec(compile(ex.setup, f"<{ex.id} setup>", "exec"), ns)
            cache[ex.id] = ns
        return dict(cache[ex.id])

    return get


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
    if ex.kind == "experiment":  # the right value is never printed
        reference = exercises.run(ex, ex.reference, namespace=setups(ex))
        right = _numbers(reference.text)
        assert not right & _numbers(result.text), (right, result.text)
