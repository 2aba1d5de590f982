"""The clinical-feature route (UK Biobank MI study's protocol): features + a classical model.

    imn train --config configs/tabular.py:quick --workdir runs/xgboost-quick
    imn train --config configs/tabular.py:paper500 --workdir runs/xgboost \\
        --set data.root=/data/ptb-xl --set model.name=random_forest
    imn train --config configs/tabular.py:paper500 --workdir runs/xgboost-grid \\
        --set data.root=/data/ptb-xl --set 'model.overrides={"grid_search": true}'

``model.name``: one of ``baselines.tabular.TABULAR_MODELS`` (default xgboost with the study's
chosen hyper-parameters). Raw mV signals (features carry units), no training loop.
"""

from imn.train.presets import tabular_recipe


def get_config(preset: str):
    return tabular_recipe(preset, model="xgboost")
