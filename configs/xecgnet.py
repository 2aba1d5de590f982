"""xECGNet (Yoo, Jun, Kim et al. 2021): an attention branch network, trained in two stages.

Stage 1 (this file's default): the perception branch's BCE plus the attention branch's BCE.
Stage 2 fine-tunes a finished stage-1 run with the attention regulariser
``gamma * sum_t |heatmap - attention|`` (gamma 1e-4, the authors' value), the heatmaps being
the stage-1 model's class activation maps of each training record's true labels::

    imn train --config configs/xecgnet.py:quick --workdir runs/xecgnet
    imn train --config configs/xecgnet.py:quick --workdir runs/xecgnet-ft \\
        --set attention.stage=2 --set attention.init_from=runs/xecgnet

``paper``: CPSC 2018 (9 classes) at 500 Hz, Adam lr 1e-3 (Keras's default; the paper does not
give one), batch 32 as the authors' code, up to 100 epochs with early stopping on validation
macro AUROC. The CPU presets train at 100 Hz on the synthetic benchmark unless ``--data`` says
otherwise; at 100 Hz x 10 s the attention map has 5 steps (pooling by 3, five times), at 500 Hz
x 10 s 21 steps.
"""

import dataclasses

from imn.train.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from imn.train.presets import check_preset, resize


def get_config(preset: str) -> TrainConfig:
    check_preset(preset)
    config = TrainConfig(
        data=DataConfig(task="superdiagnostic", normalization="zscore"),
        model=ModelConfig(name="xecgnet"),
        optim=OptimConfig(optimizer="adam", learning_rate=1e-3, weight_decay=0.0,
                          schedule="constant", pos_weight=False),
        batch_size=32, epochs=100, patience=10,
    )
    if preset in ("paper", "paper500"):
        config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, source="cpsc2018", task="cpsc2018",
                                             sampling_rate=500))
    return resize(config, preset)
