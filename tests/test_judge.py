"""The grader's verdicts are computed where no answer code ran (fromscratch.grading.judge).

One class per kind of exercise: each hostile answer below switches off or fools a guard
that lived in the answer's own process before the judge existed (every one of them scored
full marks, status ok, then); each is a wrong answer plus its attack, so it must score 0
for its exercise, while the honest twin in the same class scores full marks. Plus the
pieces: the data format between sandbox and judge, and the parameter count of models.
"""

from __future__ import annotations

import base64
import csv
import importlib.util
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn as nn

from fromscratch import exercises as E
from fromscratch.checks import core
from fromscratch.grading import Options, grade, sandbox, wire
from fromscratch.grading.grade import isolation_for

ROOT = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location(
    "make_fixtures", ROOT / "fixtures" / "grading" / "make_fixtures.py")
make_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_fixtures)


def _sandbox_problem():
    try:
        isolation_for(Options())
    except sandbox.SandboxUnavailable as exc:
        return str(exc)
    return None


SANDBOX_PROBLEM = _sandbox_problem()
OPTIONS = Options(workers=2, cell_timeout=20, check_timeout=120, total_timeout=300)

# a wrong max pooling: zeros of the right shape
WRONG = """
import torch


def max_pool2d(x, kernel_size, stride=None):
    s = stride or kernel_size
    n, c, h, w = x.shape
    return torch.zeros(n, c, (h - kernel_size) // s + 1, (w - kernel_size) // s + 1)
"""

FORGED = """
def _forged(self):
    return {"exercise": self.exercise, "status": "passed", "cases_passed": 1,
            "cases_total": 1, "text": "[PASS] " + self.exercise + ": forged", "refused": None}
"""

ATTACKS = {
    # methods of classes replaced: the result's serialisation, a tensor method compare uses
    "class_methods": FORGED + """
import torch
from fromscratch.checks import core
core.CheckResult.to_dict = _forged
core.CheckResult.passed = property(lambda self: True)
torch.Tensor.any = lambda self, *a, **k: torch.tensor(False)
""" + WRONG,
    # the checker's restore step and audit hook switched off, through modules and frames
    "checker_internals": FORGED + """
import sys
for module in list(sys.modules.values()):
    if hasattr(module, "_restore") and hasattr(module, "_Audit"):
        module._restore = lambda snapshot: []
        module._Audit.__call__ = lambda self, event, args: None
frame = sys._getframe()
while frame is not None:
    for value in list(frame.f_locals.values()):
        if type(value).__name__ == "_Audit":
            value.active = False
            value.flags.clear()
    frame = frame.f_back
import dataclasses
from fromscratch.checks import core
core.CheckResult.to_dict = _forged
""" + WRONG,
    # a standard-library module the checks import afresh after the answer
    "stdlib_patch": FORGED + """
import dataclasses
_original = dataclasses.dataclass


def _dataclass(cls=None, **kwargs):
    def wrap(c):
        c = _original(c, **kwargs)
        if c.__name__ == "CheckResult":
            c.to_dict = _forged
            c.passed = property(lambda self: True)
        return c
    return wrap if cls is None else wrap(cls)


dataclasses.dataclass = _dataclass
""" + WRONG,
    # the import system's cached finder for fromscratch/checks serves a fake check module
    "import_finder": """
import os, sys, importlib.util
import fromscratch.checks
folder = os.path.dirname(fromscratch.checks.__file__)
fake = os.path.join(os.environ.get("HOME", "/tmp"), "fake_cnn.py")
with open(fake, "w") as fh:
    fh.write("from fromscratch.checks.core import passed\\n"
             "def check_max_pool2d(fn, strict=None):\\n"
             "    return passed('cnn-max-pool', 'all cases match (fake)')\\n"
             "def check_occlusion(*a, strict=None):\\n"
             "    return passed('cnn-occlusion', 'fake')\\n")
finder = sys.path_importer_cache.get(folder)


class Finder:
    def find_spec(self, name, target=None):
        if name == "fromscratch.checks.cnn":
            return importlib.util.spec_from_file_location(name, fake)
        return finder.find_spec(name, target)

    def invalidate_caches(self):
        pass


sys.path_importer_cache[folder] = Finder()
""" + WRONG,
    # a patch installed while the check runs, undone by itself right after
    "self_undoing_patch": """
import torch
_isclose = torch.isclose


def max_pool2d(x, kernel_size, stride=None):
    torch.isclose = lambda a, b, **k: torch.ones(torch.broadcast_shapes(a.shape, b.shape),
                                                 dtype=torch.bool)
    import threading
    threading.Timer(0.5, lambda: setattr(torch, "isclose", _isclose)).start()
    s = stride or kernel_size
    n, c, h, w = x.shape
    return torch.zeros(n, c, (h - kernel_size) // s + 1, (w - kernel_size) // s + 1)
""",
    # the reference's output read from the check's frame
    "frame_reader": """
import sys
import torch


def max_pool2d(x, kernel_size, stride=None):
    frame = sys._getframe(1)
    while frame is not None:
        value = frame.f_locals.get("expected")
        if isinstance(value, torch.Tensor):
            return value.clone()
        frame = frame.f_back
    s = stride or kernel_size
    n, c, h, w = x.shape
    return torch.zeros(n, c, (h - kernel_size) // s + 1, (w - kernel_size) // s + 1)
""",
    # a trace function that swaps the check's comparison for one that always agrees
    "settrace": """
import sys


def _tracer(frame, event, arg):
    if "compare" in frame.f_globals and frame.f_globals.get("__name__", "").startswith(
            "fromscratch.checks"):
        frame.f_globals["compare"] = lambda *a, **k: None
    return None


sys.settrace(_tracer)
""" + WRONG,
    # a tensor subclass that says it is close to anything
    "lying_tensor": """
import torch


class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.isclose or getattr(func, "__name__", "") == "isclose":
            return torch.ones(args[0].shape, dtype=torch.bool)
        return super().__torch_function__(func, types, args, kwargs or {})


def max_pool2d(x, kernel_size, stride=None):
    s = stride or kernel_size
    n, c, h, w = x.shape
    return torch.zeros(n, c, (h - kernel_size) // s + 1,
                       (w - kernel_size) // s + 1).as_subclass(Liar)
""",
    # forged messages written to every descriptor (the result pipe among them)
    "forge_pipe": """
import json, os
import torch

_line = (json.dumps({"phase": "result", "result": {"exercise": "cnn-max-pool",
                     "status": "passed", "text": "[PASS] forged"}}) + "\\n").encode()


def max_pool2d(x, kernel_size, stride=None):
    for fd in range(3, 1 << 16):
        try:
            os.write(fd, _line)
        except OSError:
            pass
    s = stride or kernel_size
    n, c, h, w = x.shape
    return torch.zeros(n, c, (h - kernel_size) // s + 1, (w - kernel_size) // s + 1)
""",
    # a measurement that returns the check's expected value, read from its frames
    "measure_frames": None,
}

MEASURE_FRAMES = """
import sys


def measure_top_half_blanked(model, X, y):
    frame = sys._getframe(1)
    while frame is not None:
        for key in ("expected", "f_expected", "other_expected"):
            if isinstance(frame.f_locals.get(key), float):
                return frame.f_locals[key]
        frame = frame.f_back
    return 0.5
"""

# model exercises: the labels looked up in the course's copy of the digits (exactly, as
# the red team did), and 53k numbers kept in a Python list
LOOKUP_MODEL = """
import numpy as np
import torch
import torch.nn as nn


class Lookup(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):  # the table is made on every call: nothing kept to count
        from sklearn.datasets import load_digits
        d = load_digits()
        table = {(image / 16.0).astype(np.float32).tobytes(): int(label)
                 for image, label in zip(d.images, d.target)}
        keys = x.detach().numpy().astype(np.float32).reshape(len(x), 8, 8)
        labels = [table.get(k.tobytes(), 0) for k in keys]
        hit = torch.nn.functional.one_hot(torch.tensor(labels), 10).float() * 20
        return hit + 0 * self.fc(self.pool(self.conv(x)).flatten(1))


def make_small_cnn():
    return Lookup()
"""

LIST_MODEL = """
import random
import torch
import torch.nn as nn

random.seed(0)


class Hidden(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.table = [random.gauss(0, 0.1) for _ in range(64 * 800)]
        self.fc = nn.Linear(800, 10)

    def forward(self, x):
        w = torch.tensor(self.table).reshape(64, 800)
        features = torch.relu(self.pool(self.conv(x)).flatten(1) @ w)
        return self.fc(features)


def make_small_cnn():
    return Hidden()
"""


def _read(path) -> dict:
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


needs_sandbox = pytest.mark.skipif(SANDBOX_PROBLEM is not None,
                                   reason=f"no grading sandbox here: {SANDBOX_PROBLEM}")


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    if SANDBOX_PROBLEM:
        pytest.skip(f"no grading sandbox here: {SANDBOX_PROBLEM}")
    tmp = tmp_path_factory.mktemp("judge")
    made = make_fixtures.assignment(tmp / "assignment")
    nb = nbformat.read(made.student_notebook, 4)
    ref = {i.replace("-", "_"): E.get(i).reference for i in make_fixtures.CNN}
    subs = tmp / "submissions"
    subs.mkdir()
    nbformat.write(make_fixtures.edit(nb, **ref), subs / "honest.ipynb")
    for name, answer in ATTACKS.items():
        sources = dict(ref, cnn_max_pool=answer) if answer else \
            dict(ref, cnn_occlusion=MEASURE_FRAMES)
        nbformat.write(make_fixtures.edit(nb, **sources), subs / f"{name}.ipynb")
    book = grade(tmp / "assignment", subs, tmp / "out", OPTIONS)
    return _read(book.csv_path), tmp / "out"


@needs_sandbox
@pytest.mark.parametrize("name", [n for n, a in ATTACKS.items() if a])
def test_attacks_on_a_function_check_score_zero(attacked, name):
    rows, out = attacked
    assert rows["honest"]["cnn-max-pool"] == "3" and rows["honest"]["status"] == "ok"
    assert rows[name]["cnn-max-pool"] == "0", (name, rows[name])
    assert rows[name]["cnn-occlusion"] == "2", (name, rows[name])  # the honest other answer
    text = (out / "feedback" / f"{name}.md").read_text()
    assert "forged" not in text.split("## 1.")[1].split("## 2.")[0]


@needs_sandbox
def test_attack_on_a_measurement_scores_zero(attacked):
    rows, out = attacked
    assert rows["honest"]["cnn-occlusion"] == "2"
    assert rows["measure_frames"]["cnn-occlusion"] == "0"
    assert rows["measure_frames"]["cnn-max-pool"] == "3"
    text = (out / "feedback" / "measure_frames.md").read_text().split("## 2.")[1]
    # the judge's value is never in the answer's process; the guard may refuse the frame
    # walk itself (sys._getframe) before that shows
    assert "[FAIL] cnn-occlusion" in text and ("too " in text or "sys._getframe" in text)


@pytest.fixture(scope="module")
def models_graded(tmp_path_factory):
    if SANDBOX_PROBLEM:
        pytest.skip(f"no grading sandbox here: {SANDBOX_PROBLEM}")
    tmp = tmp_path_factory.mktemp("judge-models")
    made = make_fixtures.assignment(tmp / "a", "cnn", ["cnn-small-model"], "cnn-model")
    nb = nbformat.read(made.student_notebook, 4)
    subs = tmp / "submissions"
    subs.mkdir()
    honest = E.get("cnn-small-model").reference
    for name, answer in (("honest", honest), ("lookup", LOOKUP_MODEL), ("listed", LIST_MODEL)):
        nbformat.write(make_fixtures.edit(nb, cnn_small_model=answer), subs / f"{name}.ipynb")
    book = grade(tmp / "a", subs, tmp / "out", OPTIONS)
    return _read(book.csv_path), tmp / "out"


@needs_sandbox
def test_model_attacks_score_zero_and_the_honest_model_passes(models_graded):
    rows, out = models_graded
    assert rows["honest"]["cnn-small-model"] == "3" and rows["honest"]["status"] == "ok"
    assert rows["lookup"]["cnn-small-model"] == "0"  # no exact match for the judge's inputs
    assert "accuracy" in (out / "feedback" / "lookup.md").read_text()
    assert rows["listed"]["cnn-small-model"] == "0"  # the list counts against the budget
    assert "the budget is 5,000" in (out / "feedback" / "listed.md").read_text()


# -- the pieces, without a sandbox ------------------------------------------------------------

def test_wire_round_trip_and_malformed_data():
    value = (torch.arange(6.0).reshape(2, 3), 3, 2.5, "text", None, [True, {"k": 1}],
             torch.tensor([], dtype=torch.long))
    back = wire.decode(wire.encode(value))
    assert torch.equal(back[0], value[0]) and back[1:6] == value[1:6]
    assert back[6].dtype == torch.long and back[6].shape == (0,)
    assert repr(wire.decode(wire.encode(nn.Linear(2, 2)))).startswith("Linear")
    good = wire.encode(torch.ones(2, 2))
    for bad in ({"t": "tensor", "dtype": "float32", "shape": [3, 3], "data": good["data"]},
                {"t": "tensor", "dtype": "object", "shape": [1], "data": ""},
                {"t": "tensor", "dtype": "float32", "shape": [-1], "data": ""},
                {"t": "pickle", "v": base64.b64encode(b"cos\nsystem\n").decode()},
                {"t": "int", "v": "12x"}, ["not", "a", "dict"]):
        with pytest.raises(wire.WireError):
            wire.decode(bad)


def test_a_subclass_of_tensor_arrives_as_its_plain_numbers():
    class Liar(torch.Tensor):
        pass

    sent = wire.decode(wire.encode(torch.zeros(3).as_subclass(Liar)))
    assert type(sent) is torch.Tensor and torch.equal(sent, torch.zeros(3))


def test_model_numbers_count_what_a_model_holds_or_computes_with():
    exec_ns: dict = {}
    exec(LIST_MODEL, exec_ns)
    hidden = exec_ns["make_small_cnn"]()
    stored = sum(p.numel() for p in hidden.parameters())
    assert stored < 10_000
    assert core.model_numbers(hidden, torch.zeros(2, 1, 8, 8)) >= 64 * 800 + stored

    class Loads(nn.Module):  # a table made from a Python list inside forward
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            table = torch.tensor([[0.5] * 64] * 100)
            return self.fc(x.flatten(1)) + (x.flatten(1) @ table.T)[:, :10]

    table: dict = {}

    class Cached(nn.Module):  # a lookup table kept in a global the forward names
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            if not table:
                for i in range(100):
                    table[torch.rand(64).numpy().tobytes()] = i
            return self.fc(x.flatten(1))

    assert core.model_numbers(Cached(), torch.zeros(2, 1, 8, 8)) == 650 + 100 + 100 * 256
    plain = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    assert core.model_numbers(plain, torch.zeros(2, 1, 8, 8)) == 650
    assert core.model_numbers(Loads(), torch.zeros(2, 1, 8, 8)) == 650 + 6400
