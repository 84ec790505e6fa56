"""Alias history on a real MLflow registry (a SQLite store in a temporary folder)."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from leadscore.errors import ModelError
from leadscore.lifecycle import registry

NAME = "leadscore_test"


@pytest.fixture
def versions(tmp_path, monkeypatch):
    """Three registry versions of one model (the sources are empty folders: only the
    registry's alias bookkeeping is under test)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns.db'}")
    client = MlflowClient()
    client.create_registered_model(NAME)
    out = []
    for i in range(3):
        src = tmp_path / f"m{i}"
        src.mkdir()
        mv = client.create_model_version(NAME, source=str(src), tags={"model_version": f"hash{i}",
                                                                         "kind": "lightgbm"})
        out.append(str(mv.version))
    return out


def test_promote_keeps_a_history_and_rollback_walks_back_one_step_at_a_time(versions):
    v1, v2, v3 = versions
    for v in versions:
        registry.promote(NAME, "champion", v, reason="gate passed")
    assert registry.alias_history(NAME, "champion") == [v1, v2, v3]
    assert registry.rollback(NAME, "champion") == v2
    assert registry.alias_ref(NAME, "champion").registry_version == v2
    # a second rollback goes further back, never forward to what it just left
    assert registry.rollback(NAME, "champion") == v1
    assert registry.is_rolled_back(NAME, v3, "champion")
    assert registry.is_rolled_back(NAME, v2, "champion")
    with pytest.raises(ModelError, match="no earlier version"):
        registry.rollback(NAME, "champion")
    actions = [(e["action"], e["version"]) for e in registry.alias_log(NAME, "champion")]
    assert actions == [("promote", v1), ("promote", v2), ("promote", v3), ("rollback", v2),
                       ("rollback", v1)]


def test_forced_promotion_needs_a_reason_and_records_it(versions):
    v1, v2, _ = versions
    registry.promote(NAME, "champion", v1)
    with pytest.raises(ModelError, match="reason"):
        registry.promote(NAME, "champion", v2, forced=True)
    registry.promote(NAME, "champion", v2, forced=True, reason="new CRM fields")
    last = registry.alias_log(NAME, "champion")[-1]
    assert (last["action"], last["version"], last["previous"], last["reason"]) == (
        "force", v2, v1, "new CRM fields")
    assert last["by"] and last["at"]


def test_promoting_a_rolled_back_version_on_purpose_clears_its_mark(versions):
    v1, v2, _ = versions
    registry.promote(NAME, "champion", v1)
    registry.promote(NAME, "champion", v2)
    registry.rollback(NAME, "champion")
    assert registry.is_rolled_back(NAME, v2, "champion")
    registry.promote(NAME, "champion", v2, forced=True, reason="fixed the data issue")
    assert not registry.is_rolled_back(NAME, v2, "champion")
    assert registry.alias_history(NAME, "champion") == [v1, v2]


def test_challenger_alias_has_no_history_and_never_touches_champion(versions):
    v1, v2, _ = versions
    registry.promote(NAME, "champion", v1)
    registry.set_alias(NAME, "challenger", v2)
    assert registry.alias_ref(NAME, "champion").registry_version == v1
    assert registry.alias_ref(NAME, "challenger").registry_version == v2
    assert registry.alias_history(NAME, "challenger") == []
    assert registry.alias_ref(NAME, "nonexistent") is None
    with pytest.raises(ModelError, match="no version 99"):
        registry.promote(NAME, "champion", "99")


def test_a_relative_store_resolves_under_the_dvc_root(tmp_path, monkeypatch):
    from leadscore.tracking import resolve_tracking_uri

    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert resolve_tracking_uri("sqlite:///mlruns.db") == f"sqlite:///{tmp_path / 'mlruns.db'}"
    assert resolve_tracking_uri("sqlite:////abs/m.db") == "sqlite:////abs/m.db"
    assert resolve_tracking_uri("http://server:5000") == "http://server:5000"
    monkeypatch.delenv("DVC_ROOT")
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri("sqlite:///x/m.db") == f"sqlite:///{tmp_path / 'x/m.db'}"


def test_a_model_is_reused_only_with_the_same_code(tmp_path, monkeypatch):
    """Same model files + same carried code: the existing version; other code (e.g. a version
    exported before the wheel was carried): a new one."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns.db'}")
    client = MlflowClient()
    assert registry.find_version(client, NAME, "hash1", "none") is None  # no registered model yet
    client.create_registered_model(NAME)
    (tmp_path / "m").mkdir()
    wheel_a, wheel_b = tmp_path / "a.whl", tmp_path / "b.whl"
    wheel_a.write_bytes(b"code a")
    wheel_b.write_bytes(b"code b")
    code_a = registry.code_hash([str(wheel_a)])
    assert code_a != registry.code_hash([str(wheel_b)]) and registry.code_hash([]) == "none"
    old = client.create_model_version(NAME, source=str(tmp_path / "m"), tags={"model_version": "hash1"})
    assert registry.find_version(client, NAME, "hash1", code_a) is None  # untagged: from before
    mv = client.create_model_version(NAME, source=str(tmp_path / "m"),
                                     tags={"model_version": "hash1", "code_hash": code_a})
    assert registry.find_version(client, NAME, "hash1", code_a) == str(mv.version) != str(old.version)
    assert registry.find_version(client, NAME, "hash1", registry.code_hash([str(wheel_b)])) is None
    assert registry.find_version(client, NAME, "hash2", code_a) is None
