"""params.yaml is the one source of defaults, and a wrong key or value is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from leadscore.config import Params, load_params, params_from_dict
from leadscore.errors import EXIT_CONFIG, ConfigError, exit_code_for

ROOT = Path(__file__).resolve().parents[1]


def _differences(a: object, b: object, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b))
                for d in _differences(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")]
    return [] if a == b else [f"{path}: params.yaml {a!r} != default {b!r}"]


# on purpose: the pipeline keeps Optuna studies in optuna.db, while a library caller that names
# no storage (flat mode, tests) keeps them in memory and writes no file
INTENTIONAL = [".train_model.optuna.storage: params.yaml 'sqlite:///optuna.db' != default None"]


def test_config_defaults_equal_params_yaml():
    from_file = load_params(ROOT / "params.yaml").model_dump(mode="json", by_alias=True)
    defaults = Params().model_dump(mode="json", by_alias=True)
    assert _differences(from_file, defaults) == INTENTIONAL


def test_params_yaml_sets_every_section():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    sections = {f.alias or name for name, f in Params.model_fields.items()}
    assert sections == set(raw)


def test_unknown_key_names_the_key():
    with pytest.raises(ConfigError, match=r"train_model\.n_trails"):
        params_from_dict({"train_model": {"n_trails": 3}})


def test_bad_value_names_the_key():
    with pytest.raises(ConfigError, match=r"features\.horizon_days"):
        params_from_dict({"features": {"horizon_days": -5}})


def test_missing_params_file_is_a_config_error_with_exit_code_2(tmp_path):
    with pytest.raises(ConfigError, match="not found") as err:
        load_params(tmp_path / "params.yaml")
    assert exit_code_for(err.value) == EXIT_CONFIG


def test_params_file_that_is_not_a_mapping_is_a_config_error(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_params(path)
