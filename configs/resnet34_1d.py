"""The CPSC 2018 study's ResNet34-1D (ecg-diagnosis) with its training recipe.

    imn train --config configs/resnet34_1d.py:quick --workdir runs/resnet34-quick
    imn train --config configs/resnet34_1d.py:paper --workdir runs/resnet34 --data cpsc2018:/data/cpsc2018

The study: BCE without class weights, Adam lr 1e-4 (constant), batch 32, 40 epochs, 500 Hz.
``paper`` keeps all of it; the CPU presets train at 100 Hz on the synthetic benchmark unless
``--data`` says otherwise. Deviations from the study, all in the data pipeline: records are
brought to this project's 10 s grid (the study used the last 30 s, zero-padded at the front),
the per-lead amplitude and offset augmentation is not applied, and the checkpoint is chosen by
validation macro AUROC (the study: mean per-class F1 at validation-tuned thresholds; that F1
is reported, from validation thresholds, in metrics.json and table_classification).
"""

import dataclasses

from imn.train.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from imn.train.presets import check_preset, resize


def get_config(preset: str) -> TrainConfig:
    check_preset(preset)
    config = TrainConfig(
        data=DataConfig(task="superdiagnostic", normalization="zscore"),
        model=ModelConfig(name="resnet34_1d"),
        optim=OptimConfig(optimizer="adam", learning_rate=1e-4, weight_decay=0.0,
                          schedule="constant", pos_weight=False),
        batch_size=32, epochs=40, patience=None,
    )
    if preset in ("paper", "paper500"):
        config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, source="cpsc2018", task="cpsc2018",
                                             sampling_rate=500))
    return resize(config, preset)
