"""Localisation of XGBoost's tree SHAP (mapped onto the ECG) on the synthetic benchmark.

    python scripts/tree_shap_localisation.py --out runs/xgb-synthetic [--n 500] [--rate 100]
                                             [--explain 8]

A standalone probe at any size (``imn reproduce --synthetic --models ...,xgboost`` now scores
tree SHAP itself, faithfulness included, on the networks' explained ECGs:
``baselines/tree_shap_run.py``). Synthetic records at 100 Hz, seed 0, folds 1-8 / 9 / 10:
XGBoost with the UK Biobank study's hyper-parameters is trained on the clinical features of
the training folds (:mod:`baselines.tabular`), then the first ``--explain`` test records that carry a class with
a local evidence mask (QRSW, STE, TINV) are each explained for the highest-scored such class,
exactly as ``imn.explain.run`` picks targets (``targets="evidence"``). Each class's tree SHAP
is mapped onto the ECG (:func:`baselines.tree_shap.shap_to_ecg`) and scored by the same four
localisation metrics as ``table_localisation``, next to a random map (the same control).
Also printed for all test records with local evidence, not only the first ``--explain``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.tabular import train_and_evaluate  # noqa: E402
from baselines.tree_shap import explain_run  # noqa: E402
from imn import faithfulness  # noqa: E402
from imn.explain.run import _local_evidence  # noqa: E402
from imn.train.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from imn.train.data import load_dataset  # noqa: E402

METRICS = ("pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy", "mask_auroc")


def scores_of(attribution: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    values = {name: np.asarray(getattr(faithfulness, name)(attribution, mask), np.float64) for name in METRICS}
    return {name: float(np.nanmean(v)) for name, v in values.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--explain", type=int, default=8)
    args = parser.parse_args()

    config = TrainConfig(data=DataConfig(source="synthetic", synthetic_n=args.n, sampling_rate=args.rate,
                                         normalization="none"),
                         model=ModelConfig(name="xgboost"), bootstrap_samples=200)
    summary = train_and_evaluate(config, args.out)
    print(f"XGBoost on clinical features, synthetic test macro AUROC {summary['test']['macro_auroc']:.3f} "
          f"(validation {summary['best_val_macro_auroc']:.3f})")

    dataset, _ = load_dataset(config.data, config.seed)
    test = dataset.split("test")
    local = _local_evidence(test)
    rows = np.flatnonzero(local.any(axis=1))
    per_class = [explain_run(args.out, "test", class_index=k) for k in range(len(dataset.classes))]
    logits = np.stack([p["shap"].sum(1) + p["bias"] for p in per_class], axis=1)  # (N_test, K)
    targets = np.where(local[rows], logits[rows], -np.inf).argmax(axis=1)
    attribution = np.stack([per_class[k]["attribution"][r] for r, k in zip(rows, targets)])
    masks = np.stack([test.evidence[r, k] for r, k in zip(rows, targets)])
    random_map = np.random.default_rng(0).normal(size=attribution.shape).astype(np.float32)
    for label, count in ((f"first {args.explain}", args.explain), ("all", len(rows))):
        ours = scores_of(attribution[:count], masks[:count])
        control = scores_of(random_map[:count], masks[:count])
        print(f"{label} test ECGs with local evidence ({min(count, len(rows))}):")
        for name in METRICS:
            print(f"  {name:26s} tree SHAP {ours[name]:.3f}   random {control[name]:.3f}")


if __name__ == "__main__":
    main()
