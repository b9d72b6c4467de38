"""Train the digits classifier behind the generative chapters' Frechet distance, and calibrate it.

    PYTHONPATH=src python tools/train_fd_classifier.py          # rewrite both files
    PYTHONPATH=src python tools/train_fd_classifier.py --check  # retrain, compare, write nothing

Writes ``src/fromscratch/data/fd_classifier.pt`` (the weights, about 60 kB) and
``src/fromscratch/data/fd_calibration.json`` (FD and the other measures for real digits,
noisy digits, two fitted Gaussians and uniform noise). Both are deterministic: seed 0,
training in float64 on the CPU (a few seconds). ``tests/test_fd.py`` retrains through the
same function (:func:`fromscratch.generative.train_fd_classifier`) and recomputes the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from fromscratch import generative as gen

SEED = 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="retrain and compare with the shipped files; write nothing")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    model, acc = gen.train_fd_classifier(SEED)
    print(f"trained in {time.perf_counter() - start:.1f} s; test accuracy {acc:.4f}")
    table = gen.calibrate_fd(SEED, model=model)
    calibration = {
        "n_samples": len(gen.reference_digits()[1]),
        "seed": SEED,
        "classifier_test_accuracy": round(acc, 4),
        "description": gen.CALIBRATION_SAMPLES,
        "table": {name: {k: round(v, 4) for k, v in row.items()} for name, row in table.items()},
    }
    print(gen.calibration_markdown(table))

    if args.check:
        shipped = gen.read_weights_file()
        worst = max((shipped["state_dict"][k] - v).abs().max().item()
                    for k, v in model.state_dict().items())
        print(f"shipped weights: test accuracy {shipped['test_accuracy']:.4f}, "
              f"largest weight difference {worst:.3g}")
        print("shipped calibration:", json.dumps(gen.load_calibration()["table"], indent=1))
        return 0

    gen.save_fd_classifier(model, acc, SEED)
    gen.CALIBRATION_FILE.write_text(json.dumps(calibration, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {gen.WEIGHTS_FILE} ({gen.WEIGHTS_FILE.stat().st_size / 1024:.0f} kB) "
          f"and {gen.CALIBRATION_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
