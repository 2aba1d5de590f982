"""The clinical-feature route (UK Biobank MI study's protocol): features + a classical model.

    imn train --config configs/tabular.py:quick --workdir runs/xgboost-quick
    imn train --config configs/tabular.py:paper500 --workdir runs/xgboost \\
        --set data.root=/data/ptb-xl --set model.name=random_forest
    imn train --config configs/tabular.py:paper500 --workdir runs/xgboost-grid \\
        --set data.root=/data/ptb-xl --set 'model.overrides={"grid_search": true}'

``model.name``: one of ``baselines.tabular.TABULAR_MODELS`` (default xgboost with the study's
chosen hyper-parameters). Raw mV signals (features carry units), no training loop.
"""

import dataclasses

from imn.train.config import DataConfig, ModelConfig, TrainConfig
from imn.train.presets import check_preset, resize


def get_config(preset: str):
    check_preset(preset)
    config = TrainConfig(data=DataConfig(task="norm_vs_mi", normalization="none"),
                         model=ModelConfig(name="xgboost"), epochs=1, patience=None)
    config = resize(config, preset)
    return dataclasses.replace(config, epochs=1, patience=None)
