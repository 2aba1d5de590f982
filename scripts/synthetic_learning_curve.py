"""Learning curve of one CNN on the synthetic benchmark: test macro AUROC against training
samples seen, per difficulty level.

    python scripts/synthetic_learning_curve.py --levels easy,default,hard --out curves/

Trains ``--model`` (default ``resnet1d_wang``) with the PTB-XL benchmark recipe of
``configs/benchmark.py`` (train-set standard scaler, random 2.5 s crops, 2.5 s windows with
1.25 s stride and max-aggregation at evaluation, AdamW one-cycle) on ``--n`` generated
records per level (folds 1-8 train, 9 validation, 10 test), and every ``--eval-every``
training steps scores the validation and test folds. Writes ``learning_curve.csv`` (level,
step, samples seen, train seconds, validation and test macro AUROC) and
``learning_curve.png`` into ``--out``. The test AUROC is reported, never used to choose
anything: the curve shows how much training each level needs, for sizing presets.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path


from imn.train import metrics
from imn.train.config import load_config
from imn.train.trainer import predict, setup_run

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ("level", "model", "step", "samples_seen", "train_seconds", "val_macro_auroc",
           "test_macro_auroc")


def curve(level: str, model: str, n: int, epochs: int, eval_every: int, seed: int) -> list[dict]:
    """Train one run and return a row per evaluation point (step 0 included)."""
    config = load_config(f"{REPO / 'configs/benchmark.py'}:cpu", [
        "data.source=synthetic", f"data.synthetic_level={level}", f"data.synthetic_n={n}",
        f"model.name={model}", f"epochs={epochs}", f"seed={seed}"])
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as workdir:
        run = setup_run(config, workdir, write_files=False)
        state = run.steps.init_state()
        trained, started = 0.0, time.perf_counter()

        def evaluate(step: int) -> None:
            scores = {name: metrics.macro_auroc(run.data.split(name).labels,
                                                predict(run, state, run.data.split(name).signals))
                      for name in ("validation", "test")}
            rows.append({"level": level, "model": model, "step": step,
                         "samples_seen": step * config.batch_size, "train_seconds": round(trained, 2),
                         "val_macro_auroc": scores["validation"], "test_macro_auroc": scores["test"]})
            total = epochs * run.steps_per_epoch
            print(f"{level:>8} step {step:>5}/{total}  {step * config.batch_size:>7} samples  "
                  f"{trained:6.1f} s training  val {scores['validation']:.3f}  "
                  f"test {scores['test']:.3f}  ({time.perf_counter() - started:.0f} s wall)",
                  flush=True)

        evaluate(0)
        step = 0
        for epoch in range(epochs):
            for index, batch in enumerate(run.train_loader.epoch(epoch)):
                if index >= run.steps_per_epoch:
                    break
                tick = time.perf_counter()
                state, step_metrics = run.steps.train_step(state, batch)
                step_metrics["loss"].block_until_ready()
                trained += time.perf_counter() - tick
                step += 1
                if step % eval_every == 0:
                    evaluate(step)
        if step % eval_every:
            evaluate(step)
        run.checkpoints.close()
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 3.5), constrained_layout=True)
    for level in dict.fromkeys(row["level"] for row in rows):
        points = [row for row in rows if row["level"] == level]
        axis.plot([r["samples_seen"] for r in points], [r["test_macro_auroc"] for r in points],
                  marker="o", markersize=3, label=level)
    axis.set_xlabel("training samples seen (2.5 s crops)")
    axis.set_ylabel("test macro AUROC")
    axis.set_title(f"{rows[0]['model']} on the synthetic benchmark")
    axis.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    axis.legend(title="level")
    figure.savefig(path, dpi=150)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="easy,default,hard")
    parser.add_argument("--model", default="resnet1d_wang")
    parser.add_argument("--n", type=int, default=2000, help="generated records per level")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--eval-every", type=int, default=20, help="training steps between evaluations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="learning_curve")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for level in args.levels.split(","):
        rows += curve(level, args.model, args.n, args.epochs, args.eval_every, args.seed)
    with open(out / "learning_curve.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out / "learning_curve.png")
    print(f"wrote {out / 'learning_curve.csv'} and {out / 'learning_curve.png'}")


if __name__ == "__main__":
    main()
