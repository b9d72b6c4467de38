import os

import pytest
import torch

os.environ.setdefault("FROMSCRATCH_PROGRESS", "0")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def setups():
    """Run each exercise's setup once (some train a model) and reuse its namespace."""
    cache = {}

    def get(ex):
        if ex.id not in cache:
            ns = {"__name__": "__exercise__"}
            if ex.setup:
                exec(compile(ex.setup, f"<{ex.id} setup>", "exec"), ns)
            cache[ex.id] = ns
        return dict(cache[ex.id])

    return get
