"""The score history store: one row per run, atomic and idempotent, counts only."""

from __future__ import annotations

import duckdb
import pytest

from leadscore.monitor import drift
from leadscore.monitor.history import (
    append_run,
    read_reference,
    read_runs,
    run_row,
    save_reference,
)
from tests.monitor.conftest import AS_OF, frames, reference


def _row(ref, run_id="r1", **kw):
    f, s = frames(500, 3)
    f["lead_id"] = [f"LEAD-{i:05d}" for i in range(500)]  # never reaches the history
    summary = drift.summarize(f, s, ref["spec"])
    return run_row(run_id=run_id, as_of=AS_OF, scored_at=AS_OF, model_version="m1", model_kind="lightgbm",
                   leads_in=520, leads_quarantined=3, leads_scored=500, newest_event_at=AS_OF,
                   summary=summary, **kw)


def test_append_then_read_back(tmp_path):
    path = tmp_path / "h" / "history.duckdb"
    ref = reference()
    assert append_run(path, _row(ref))
    (r,) = read_runs(path)
    assert r["run_id"] == "r1" and r["leads_scored"] == 500 and r["as_of"] == AS_OF
    assert sum(r[g] for g in drift.GRADES) == 500
    assert r["p05"] <= r["p50"] <= r["p95"]
    assert r["summary"]["rows"] == 500


def test_same_run_id_twice_is_one_row(tmp_path):
    path = tmp_path / "history.duckdb"
    ref = reference()
    assert append_run(path, _row(ref))
    assert not append_run(path, _row(ref))
    assert append_run(path, _row(ref, run_id="r2"))
    assert [r["run_id"] for r in read_runs(path)] == ["r1", "r2"]


def test_history_holds_no_lead_ids(tmp_path):
    path = tmp_path / "history.duckdb"
    append_run(path, _row(reference()))
    with duckdb.connect(str(path), read_only=True) as con:
        text = " ".join(str(v) for row in con.execute("SELECT * FROM score_runs").fetchall() for v in row)
    assert "LEAD-" not in text


def test_reference_is_kept_per_model_version_and_frozen(tmp_path):
    path = tmp_path / "history.duckdb"
    ref = reference()
    assert save_reference(path, "m1", source="a", spec=ref["spec"], summary=ref["summary"], created_at=AS_OF)
    other = reference(seed=9)
    assert not save_reference(path, "m1", source="b", spec=other["spec"], summary=other["summary"],
                              created_at=AS_OF)
    got = read_reference(path, "m1")
    assert got["source"] == "a" and got["summary"] == ref["summary"]
    assert read_reference(path, "m2") is None
    assert read_runs(tmp_path / "missing.duckdb") == []


def test_a_failed_insert_leaves_no_row(tmp_path):
    path = tmp_path / "history.duckdb"
    ref = reference()
    append_run(path, _row(ref))
    bad = _row(ref, run_id="r2") | {"leads_scored": "not a number"}
    with pytest.raises(Exception):  # noqa: B017 (any driver error)
        append_run(path, bad)
    assert [r["run_id"] for r in read_runs(path)] == ["r1"]


def test_a_run_without_a_reference_table_is_not_recorded_but_the_store_exists(tmp_path):
    from leadscore.config import params_from_dict
    from leadscore.monitor.history import History

    p = params_from_dict({"monitor": {"history": str(tmp_path / "h.duckdb"),
                                      "reference_table": str(tmp_path / "missing.parquet")}})
    history = History.from_params(p)
    assert history.start(model_version="m", model_kind="rules", names=["x"], categorical=[],
                         predict=lambda x: x) is None
    assert (tmp_path / "h.duckdb").exists()
    assert read_runs(tmp_path / "h.duckdb") == []
    off = params_from_dict({"monitor": {"history": str(tmp_path / "off.duckdb"), "record": False}})
    assert History.from_params(off).start(model_version="m", model_kind="rules", names=["x"],
                                          categorical=[], predict=lambda x: x) is None
    assert (tmp_path / "off.duckdb").exists() and read_runs(tmp_path / "off.duckdb") == []
