"""Search for the best CPU recipe for the LLM chapter's character model.

The bar (chapter 4): a validation loss of at most 1.61 nats per character on a 90/10 split
of the course text within 40 s of training on a 2-core CPU, the loss that nanoGPT's README
CPU recipe (4 layers, 4 heads, 128 wide, block 64, batch 12) reaches after about 60 s.
Every candidate is trained by the course's own GPT for the same wall-clock budget on the
same split, starting with nanoGPT's recipe itself; the table of results is written to
``src/fromscratch/data/llm_search.json``, which the chapter shows.

Run it on an otherwise idle machine (timings decide the result):

    python tools/llm_search.py                   # every candidate, 40 s each (~15 min)
    python tools/llm_search.py --seconds 20 --only nanogpt   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from fromscratch.data import CharVocab, load_text  # noqa: E402
from fromscratch.models.gpt import GPT, GPTConfig, LMRecipe, train_lm  # noqa: E402

OUT = ROOT / "src" / "fromscratch" / "data" / "llm_search.json"

# name: (config changes from nanoGPT's, recipe changes from nanoGPT's)
CANDIDATES = {
    "nanogpt": ({}, {}),
    "nanogpt, lr 2e-3": ({}, {"lr": 2e-3}),
    "batch 32": ({}, {"batch_size": 32, "lr": 2e-3}),
    "3 layers, batch 24": ({"n_layer": 3}, {"batch_size": 24, "lr": 2e-3}),
    "2 layers, batch 32": ({"n_layer": 2}, {"batch_size": 32, "lr": 2e-3}),
    "width 96, 4 layers": ({"d_model": 96}, {"batch_size": 24, "lr": 2e-3}),
    "width 192, 2 layers": ({"d_model": 192, "n_layer": 2, "n_head": 6},
                            {"batch_size": 16, "lr": 2e-3}),
    "block 128, batch 12": ({"block_size": 128}, {"lr": 2e-3}),
    "untied weights": ({"tie_weights": False}, {"batch_size": 32, "lr": 2e-3}),
    "sinusoidal positions": ({"positions": "sinusoidal"}, {"batch_size": 32, "lr": 2e-3}),
    "short warm-up": ({}, {"batch_size": 32, "lr": 3e-3, "warmup": 20}),
}


def split_ids():
    text = load_text()
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    n = int(0.9 * len(ids))
    return vocab, ids[:n], ids[n:]


def run(name: str, seconds: float, seed: int = 0, threads: int = 0) -> dict:
    config_changes, recipe_changes = CANDIDATES[name]
    vocab, train_ids, val_ids = split_ids()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    config = GPTConfig.nanogpt_cpu(len(vocab), **config_changes)
    recipe = LMRecipe(**{**asdict(LMRecipe()), **recipe_changes})
    model = GPT(config)
    checkpoints = sorted({min(27.0, seconds), seconds, *([60.0] if name == "nanogpt" else [])})
    budget = max(checkpoints)
    result = train_lm(model, train_ids, recipe, seconds=budget, val_ids=val_ids,
                      eval_at=tuple(checkpoints), seed=seed)
    return {"name": name, "config": asdict(config), "recipe": asdict(recipe),
            "parameters": sum(p.numel() for p in model.parameters()),
            "steps": result.steps, "seconds": round(result.seconds, 1),
            "val_loss_at": [[round(s, 1), n, round(v, 4)] for s, n, v in result.evals],
            "threads": torch.get_num_threads()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--only", nargs="*", help="names of candidates to run")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    names = args.only or list(CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidates {unknown}; known: {list(CANDIDATES)}")
    rows = []
    for name in names:
        row = run(name, args.seconds, threads=args.threads)
        rows.append(row)
        losses = ", ".join(f"{v:.3f} at {s:.0f} s" for s, _, v in row["val_loss_at"])
        print(f"{name:>24}: {row['parameters']:>8,} parameters, {row['steps']:>5} steps, "
              f"validation loss {losses}", flush=True)
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "seconds": args.seconds}
    args.out.write_text(json.dumps({"meta": meta, "runs": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
