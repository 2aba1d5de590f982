"""The UK Biobank MI study's protocol for every model of the feature route.

    python scripts/feature_route_cv.py --root ../shared/data/ptb-xl --task norm_vs_mi \\
        --rate 500 --out runs/feature-cv [--models xgboost random_forest ...] [--grid-search]

Per model: 5-fold CV over PTB-XL's strat folds ({1,2}, ..., {9,10}), AUROC / AUPRC / F1 and
AUROC by sex and age band as mean +- sd (:mod:`baselines.study_protocol`). Writes
``<out>/<model>/cv.json`` and ``<out>/cv.md``; prints the Markdown table. The features are
extracted once (cached) and shared by all models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.study_protocol import cross_validate_tabular, cv_markdown  # noqa: E402
from baselines.tabular import TABULAR_MODELS  # noqa: E402
from imn.train.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="PTB-XL folder (PhysioNet layout)")
    parser.add_argument("--task", default="norm_vs_mi")
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--out", required=True)
    parser.add_argument("--models", nargs="+", default=list(TABULAR_MODELS), choices=TABULAR_MODELS)
    parser.add_argument("--grid-search", action="store_true", help="the study's grid, inner CV on training folds")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    results = []
    for model in args.models:
        overrides = {"grid_search": True} if args.grid_search else {}
        config = TrainConfig(data=DataConfig(source="ptbxl", root=args.root, task=args.task,
                                             sampling_rate=args.rate, normalization="none"),
                             model=ModelConfig(name=model, overrides=overrides), seed=args.seed)
        results.append(cross_validate_tabular(config, Path(args.out) / model, n_folds=args.folds))
        print(f"{model}: AUROC {results[-1]['metrics']['auroc']}", flush=True)
    table = cv_markdown(results)
    (Path(args.out) / "cv.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
