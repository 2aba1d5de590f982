from pathlib import Path

import pytest

from imn.train.config import TrainConfig, apply_overrides, load_config
from imn.train.presets import PRESETS

REPO = Path(__file__).resolve().parents[2]
CONFIG_FILES = sorted((REPO / "configs").glob("*.py"))


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_config_and_preset_loads_and_round_trips_through_json(path, preset):
    config = load_config(f"{path}:{preset}")
    assert TrainConfig.from_json(config.to_json()) == config


def test_overrides_are_typed_and_unknown_keys_fail():
    config = load_config(f"{REPO / 'configs/imn.py'}:quick",
                         ["optim.learning_rate=3e-4", "data.task=norm_vs_cd", "data.crop_seconds=2.5",
                          "data.train_folds=1,2,3", "patience=none", "model.overrides.dropout=0.1"])
    assert config.optim.learning_rate == pytest.approx(3e-4)
    assert config.data.task == "norm_vs_cd"
    assert config.data.crop_seconds == 2.5
    assert config.data.train_folds == (1, 2, 3)
    assert config.patience is None
    assert config.model.overrides == {"dropout": 0.1}
    with pytest.raises(ValueError, match="unknown config key"):
        apply_overrides(config, ["optim.learning_rat=1"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(config, ["epochs"])


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="tiny"):
        load_config(f"{REPO / 'configs/imn.py'}:huge")


def test_auto_source_prefers_ptbxl_when_a_root_is_known(monkeypatch):
    config = TrainConfig()
    monkeypatch.delenv("IMN_PTBXL", raising=False)
    assert config.data.resolved_source() == ("synthetic", None)
    monkeypatch.setenv("IMN_PTBXL", "/somewhere/ptb-xl")
    assert config.data.resolved_source() == ("ptbxl", "/somewhere/ptb-xl")
