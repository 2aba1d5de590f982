"""The paper's Grad-CAM baseline: IMN's encoder + pooling + linear, trained like IMN."""

from imn.train.presets import imn_paper_recipe


def get_config(preset: str):
    return imn_paper_recipe(preset, model="cnn2d")
