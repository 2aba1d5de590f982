"""ECG-IMN with the paper's categorical (2-logit softmax) head on a binary task."""

from imn.train.presets import imn_paper_recipe


def get_config(preset: str):
    return imn_paper_recipe(preset, model="imn_softmax")
