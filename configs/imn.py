"""ECG-IMN with the paper's recipe. Task: ``--set data.task=...`` (default norm_vs_mi).

    imn train --config configs/imn.py:quick --workdir runs/imn-quick
    imn train --config configs/imn.py:paper --workdir runs/imn --set data.root=/data/ptb-xl
"""

from imn.train.presets import imn_paper_recipe


def get_config(preset: str):
    return imn_paper_recipe(preset, model="imn")
