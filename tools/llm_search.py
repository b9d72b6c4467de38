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
    python tools/llm_search.py --ngram           # the n-gram rows (orders 8 to 64)
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
from fromscratch.models import rnn  # noqa: E402
from fromscratch.models.gpt import GPT, GPTConfig, LMRecipe, train_lm  # noqa: E402

OUT = ROOT / "src" / "fromscratch" / "data" / "llm_search.json"

# name: (config changes from nanoGPT's, recipe changes from nanoGPT's). Each row changes
# one thing from the row it names, so the table reads as a path from nanoGPT's recipe.
FAST = {"lr": 3e-3, "batch_size": 24}
CANDIDATES = {
    "nanogpt": ({}, {}),
    "lr 2e-3": ({}, {"lr": 2e-3}),
    "lr 3e-3, batch 24": ({}, FAST),
    "+ relu": ({"activation": "relu"}, FAST),
    "+ relu, 3 layers": ({"activation": "relu", "n_layer": 3}, FAST),
    "+ relu, 2 layers": ({"activation": "relu", "n_layer": 2}, FAST),
    "+ relu, 3 layers, batch 32": ({"activation": "relu", "n_layer": 3},
                                   {**FAST, "batch_size": 32}),
    "+ relu, 3 layers, lr 5e-3": ({"activation": "relu", "n_layer": 3}, {**FAST, "lr": 5e-3}),
    "+ relu, width 96": ({"activation": "relu", "d_model": 96}, FAST),
    "+ relu, 3 layers, untied": ({"activation": "relu", "n_layer": 3, "tie_weights": False},
                                 FAST),
    "+ relu, 3 layers, sinusoidal": ({"activation": "relu", "n_layer": 3,
                                      "positions": "sinusoidal"}, FAST),
    "+ relu, 3 layers, warm-up 20": ({"activation": "relu", "n_layer": 3},
                                     {**FAST, "warmup": 20}),
    # round 2: around the best of round 1 (2 layers)
    "+ relu, 2 layers, again": ({"activation": "relu", "n_layer": 2}, FAST),
    "+ relu, 2 layers, lr 5e-3": ({"activation": "relu", "n_layer": 2}, {**FAST, "lr": 5e-3}),
    "+ relu, 2 layers, batch 16": ({"activation": "relu", "n_layer": 2},
                                   {**FAST, "batch_size": 16}),
    "+ relu, 2 layers, batch 32": ({"activation": "relu", "n_layer": 2},
                                   {**FAST, "batch_size": 32}),
    "+ relu, 2 layers, width 160": ({"activation": "relu", "n_layer": 2, "d_model": 160},
                                    FAST),
    "+ relu, 2 layers, width 96": ({"activation": "relu", "n_layer": 2, "d_model": 96}, FAST),
    "+ relu, 1 layer": ({"activation": "relu", "n_layer": 1}, FAST),
    "+ relu, 2 layers, bfloat16": ({"activation": "relu", "n_layer": 2},
                                   {**FAST, "precision": "bfloat16"}),
    # round 3: narrower
    "+ relu, 2 layers, width 64": ({"activation": "relu", "n_layer": 2, "d_model": 64}, FAST),
    "+ relu, 3 layers, width 96": ({"activation": "relu", "n_layer": 3, "d_model": 96}, FAST),
    "+ relu, 2 layers, width 96, batch 32, lr 5e-3": (
        {"activation": "relu", "n_layer": 2, "d_model": 96},
        {**FAST, "batch_size": 32, "lr": 5e-3}),
}
# The baseline at equal time: the RNN chapter's LSTM (nn.LSTM kernels), its own recipe
# (Adam-style, the larger learning rate recurrent models take, no weight decay).
LSTM_RECIPE = {"lr": 5e-3, "batch_size": 32, "warmup": 20, "weight_decay": 0.0}
LSTMS = {"LSTM, hidden 256": 256, "LSTM, hidden 512": 512}


def split_ids():
    text = load_text()
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    n = int(0.9 * len(ids))
    return vocab, ids[:n], ids[n:]


def run(name: str, seconds: float, seed: int = 0, threads: int = 0) -> dict:
    vocab, train_ids, val_ids = split_ids()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    if name in LSTMS:
        config = rnn.RNNConfig(embed=64, hidden=LSTMS[name], dropout=0.0)
        model = rnn.CharModel("lstm", len(vocab), config, fused=True)
        recipe = LMRecipe(**{**asdict(LMRecipe()), **LSTM_RECIPE})
    else:
        config_changes, recipe_changes = CANDIDATES[name]
        config = GPTConfig.nanogpt_cpu(len(vocab), **config_changes)
        recipe = LMRecipe(**{**asdict(LMRecipe()), **recipe_changes})
        model = GPT(config)
    checkpoints = sorted({min(10.0, seconds), min(27.0, seconds), seconds,
                          *([60.0] if name == "nanogpt" else [])})
    budget = max(checkpoints)
    result = train_lm(model, train_ids, recipe, seconds=budget, val_ids=val_ids,
                      eval_at=tuple(checkpoints), seed=seed, block=64)
    return {"name": name, "config": asdict(config), "recipe": asdict(recipe),
            "parameters": sum(p.numel() for p in model.parameters()),
            "steps": result.steps, "seconds": round(result.seconds, 1),
            "val_loss_at": [[round(s, 1), n, round(v, 4)] for s, n, v in result.evals],
            "threads": torch.get_num_threads()}


def ngram_rows(orders=(8, 16, 32, 64), alphas=(10, 30, 100)) -> list:
    """The counting baseline at long contexts: validation loss of the best ``alpha`` for
    each order (counting 64 orders takes about a minute and a lot of memory, too much
    for the chapter, which counts up to order 8 itself)."""
    import math

    from fromscratch.models.ngram import NGramModel

    vocab, train_ids, val_ids = split_ids()
    n = (len(val_ids) - 1) // 64 * 64
    X, Y = val_ids[:n].view(-1, 64), val_ids[1:n + 1].view(-1, 64)
    model = NGramModel(len(vocab), max_order=max(orders)).fit(train_ids)
    ppl = model.tune(X, Y, orders=orders, alphas=alphas)
    rows = []
    for order in orders:
        alpha = min(alphas, key=lambda a: ppl[order, a])
        rows.append({"order": order, "alpha": alpha,
                     "val_loss": round(math.log(ppl[order, alpha]), 4)})
        print(f"{order:>3}-gram (alpha {alpha}): validation loss {rows[-1]['val_loss']:.3f}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--only", nargs="*", help="names of candidates to run")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--ngram", action="store_true",
                        help="only add the n-gram rows (orders 8-64; no timing) to --out")
    parser.add_argument("--append", action="store_true",
                        help="keep the rows already in --out (a row run again is replaced)")
    args = parser.parse_args(argv)
    if args.ngram:
        table = json.loads(args.out.read_text())
        table["ngram"] = ngram_rows()
        args.out.write_text(json.dumps(table, indent=1) + "\n")
        print(f"wrote the n-gram rows into {args.out}")
        return
    known = [*CANDIDATES, *LSTMS]
    names = args.only or known
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown candidates {unknown}; known: {known}")
    rows = []
    for name in names:
        row = run(name, args.seconds, threads=args.threads)
        rows.append(row)
        losses = ", ".join(f"{v:.3f} at {s:.0f} s" for s, _, v in row["val_loss_at"])
        print(f"{name:>24}: {row['parameters']:>8,} parameters, {row['steps']:>5} steps, "
              f"validation loss {losses}", flush=True)
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "seconds": args.seconds}
    if args.append and args.out.exists():
        new = {row["name"] for row in rows}
        old = json.loads(args.out.read_text())["runs"]
        rows = [row for row in old if row["name"] not in new] + rows
    order = {name: i for i, name in enumerate(known)}
    rows.sort(key=lambda row: order.get(row["name"], len(order)))
    args.out.write_text(json.dumps({"meta": meta, "runs": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
