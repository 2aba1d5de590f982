"""Black-box 1-D baselines with the PTB-XL benchmark recipe (crops, windows, one-cycle).

Model: ``--set model.name=inception1d|resnet1d_wang|xresnet1d101`` (default inception1d);
task: ``--set data.task=...`` (default superdiagnostic).
"""

from imn.train.presets import benchmark_recipe


def get_config(preset: str):
    return benchmark_recipe(preset, model="inception1d")
