"""Score one lead now: `mlflow models serve` on the exported model, and `leadscore serve`
(`leadscore.serve.server`) over the tiny session CRM and model (tests/serve/trained.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.features.build import build_features, titles_sql
from leadscore.schema import CANARY_EMAIL, CANARY_FIRST_NAME, CANARY_LAST_NAME
from leadscore.serve.batch import feature_kwargs, load_scorer_model, open_crm, verify_model_folder
from leadscore.serve.server import LeadService, RequestError, make_server
from tests.serve.trained import AS_OF, DOMAINS, FEATURES

GRADES = {f"{letter}{digit}" for letter in "ABCD" for digit in "1234"}
CANARIES = (CANARY_EMAIL, CANARY_FIRST_NAME, CANARY_LAST_NAME)
ULP_TOLERANT = ["engagement_decayed"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, body: dict | None = None, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _assert_score(doc: dict) -> None:
    assert 0.0 <= doc["probability"] <= 1.0
    assert doc["grade"] in GRADES
    assert doc["grade"] == doc["fit_grade"] + doc["engagement_grade"]
    assert doc["reasons"] and all({"code", "text", "contribution"} <= set(r) for r in doc["reasons"])


# ---- the exported model carries leadscore ------------------------------------------------

def test_exported_model_requires_the_leadscore_wheel_it_carries(trained):
    reqs = (trained.scorer / "requirements.txt").read_text().split()
    wheels = [r for r in reqs if r.endswith(".whl")]
    assert len(wheels) == 1 and (trained.scorer / wheels[0]).is_file()
    with zipfile.ZipFile(trained.scorer / wheels[0]) as zf:
        names = set(zf.namelist())
    assert {"leadscore/serve/model_code.py", "leadscore/serve/scorer.py"} <= names
    assert any(n.endswith(".dist-info/WHEEL") for n in names)
    assert not any("__pycache__" in n for n in names)
    # importable from the wheel alone (what pip installs), and the verified load still works
    code = "import leadscore.serve.model_code as m, sys; print(m.__file__)"
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(trained.scorer / wheels[0])!r}); {code}"],
                         capture_output=True, text=True, check=True, cwd=trained.root)
    assert out.stdout.strip().startswith(str(trained.scorer / wheels[0]))
    assert verify_model_folder(trained.scorer) is not None
    assert load_scorer_model(str(trained.scorer)).metadata.metadata["model_version"]


@pytest.mark.slow
def test_mlflow_models_serve_scores_a_posted_lead(trained):
    model = load_scorer_model(str(trained.scorer))
    names = [c.name for c in model.metadata.get_input_schema().inputs]
    row = trained.table[names].head(1).copy()
    num = [n for n in names if row[n].dtype.kind == "f"]
    row[num] = row[num].fillna(0.0)
    port = _free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", str(trained.scorer),
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, "mlflow models serve exited"
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping in 120 s"
            time.sleep(0.5)
        body = {"dataframe_split": json.loads(row.to_json(orient="split", index=False))}
        status, doc = _request(f"http://127.0.0.1:{port}/invocations", body)
        assert status == 200, doc
        (pred,) = doc["predictions"]
        _assert_score(pred)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---- leadscore serve -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(trained):
    service = LeadService.from_model_uri(str(trained.scorer), trained.raw, FEATURES, DOMAINS, as_of=AS_OF)
    httpd = make_server(service, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", service
    finally:
        httpd.shutdown()
        httpd.server_close()
        service.close()


def _eligible_id(trained) -> str:
    ids = trained.table.loc[trained.table["as_of"] == trained.table["as_of"].max(), "lead_id"]
    return str(ids.iloc[0])


def test_serve_answers_a_lead_by_id_like_the_scorer(server, trained):
    url, service = server
    lead_id = _eligible_id(trained)
    status, doc = _request(f"{url}/leads/{lead_id}")
    assert status == 200, doc
    _assert_score(doc)
    assert doc["lead_id"] == lead_id and doc["model_version"] == service.model_version
    assert doc["as_of"].startswith(AS_OF.date().isoformat())
    # the same numbers as the scorer on the training feature code's row
    expected = service.scorer.score(service.features_of(lead_id)).iloc[0]
    assert doc["probability"] == pytest.approx(expected["probability"])
    assert doc["grade"] == expected["grade"]
    status, doc = _request(f"{url}/leads/{lead_id}?as_of=2025-06-01")
    assert status in (200, 422) and doc.get("as_of", "2025-06-01").startswith("2025-06-01")


def test_served_features_equal_the_batch_features(server, trained):
    """The server's caches (lead flags, parsed titles, the as_of-free history of every lead)
    and one-query features give the batch job's rows, at the server's as_of and at an earlier
    one (the history holds later events too, which must not count); a posted title the CRM
    never had is parsed on the spot."""
    _, service = server
    earlier = AS_OF - dt.timedelta(days=75)
    con, _ = open_crm("duckdb", trained.raw, DOMAINS)
    try:
        batches = {when: build_features(con, [when], **feature_kwargs(FEATURES)) for when in (AS_OF, earlier)}
    finally:
        con.close()
    for when, batch in batches.items():
        some = batch.iloc[:: max(1, len(batch) // 40)].reset_index(drop=True)
        assert len(some) >= 20
        served = pd.concat([service.features_of(i, when) for i in some["lead_id"]], ignore_index=True)
        # exact, but for the running decay sum, whose rounding follows the table's layout
        pd.testing.assert_frame_equal(served.drop(columns=ULP_TOLERANT), some.drop(columns=ULP_TOLERANT),
                                      check_exact=True)
        np.testing.assert_allclose(served[ULP_TOLERANT].to_numpy(), some[ULP_TOLERANT].to_numpy(), rtol=1e-12, atol=0)
    assert (batches[earlier]["email_open_90d"] > 0).any()
    with duckdb.connect(str(trained.raw), read_only=True) as raw:
        record = json.loads(raw.execute("SELECT * FROM leads WHERE lead_id = ?", [some["lead_id"][0]])
                            .df().to_json(orient="records", date_format="iso"))[0]
    title = "Chief Widget Officer and VP of Quantum Sales"
    row = service.features_from_record({**record, "lead_id": "posted-1", "job_title": title}, as_of=AS_OF)
    with duckdb.connect() as con:  # its own connection: the default one is shared across tests
        parsed = con.execute(titles_sql(f"(SELECT '{title}' AS job_title)")).fetchall()[0]
    assert (row["seniority"].iloc[0], row["department"].iloc[0]) == parsed[1:]
    assert parsed[1] != "unknown"


def test_serve_answers_404_400_422_with_a_message_and_no_traceback(server, trained):
    url, _ = server
    status, doc = _request(f"{url}/leads/no-such-lead")
    assert status == 404 and "not in the CRM" in doc["error"]
    status, doc = _request(f"{url}/leads/{_eligible_id(trained)}?as_of=yesterday")
    assert status == 400 and "as_of" in doc["error"]
    status, doc = _request(f"{url}/leads/{_eligible_id(trained)}?as_of=2000-01-01")
    assert status == 422 and "created later" in doc["error"]
    status, doc = _request(f"{url}/nowhere")
    assert status == 404
    status, doc = _request(f"{url}/score", raw=b"{not json")
    assert status == 400 and "JSON" in doc["error"]
    status, doc = _request(f"{url}/score", {"lead": {"lead_id": "x", "created_at": "not a time",
                                                     "source": "web"}})
    assert status == 400 and "created_at" in doc["error"] and "not a time" not in doc["error"]
    for _, d in [(status, doc)]:
        assert "Traceback" not in json.dumps(d)


def test_serve_scores_a_posted_lead_record_and_never_echoes_personal_data(server, trained):
    url, _ = server
    with duckdb.connect(str(trained.raw), read_only=True) as con:
        lead = con.execute("SELECT * FROM leads WHERE email = ?", [CANARY_EMAIL]).df()
        events = con.execute("SELECT * FROM events WHERE lead_id = ?", [lead["lead_id"].iloc[0]]).df()
    record = json.loads(lead.to_json(orient="records", date_format="iso"))[0]
    body = {"lead": record, "events": json.loads(events.to_json(orient="records", date_format="iso")),
            "as_of": "2024-03-01"}
    status, doc = _request(f"{url}/score", body)
    assert status in (200, 422), doc
    if status == 200:
        _assert_score(doc)
    text = json.dumps(doc)
    assert not [c for c in CANARIES if c in text]
    status, doc = _request(f"{url}/leads/{record['lead_id']}?as_of=2024-03-01")
    assert not [c for c in CANARIES if c in json.dumps(doc)]
    status, doc = _request(f"{url}/score", {"lead": {**record, "lead_id": "new-1"}, "events": [
        {"occurred_at": "2024-02-20T10:00:00", "event_type": "pricing_page_view"}], "as_of": "2024-03-01"})
    assert status == 200, doc
    _assert_score(doc)
    assert doc["lead_id"] == "new-1"
    status, doc = _request(f"{url}/score", {"lead": {**record, "lead_id": "new-2"}, "events": [
        {"occurred_at": "2024-02-20T10:00:00", "event_type": "telepathy"}]})
    assert status == 400 and "event_type" in doc["error"]


def test_serve_exits_3_without_the_model_and_1_without_the_crm(trained, tmp_path):
    runner = CliRunner()
    params = Path(__file__).resolve().parents[2] / "params.yaml"
    r = runner.invoke(app, ["serve", "--model", str(tmp_path / "missing"), "--crm", str(trained.raw),
                            "--params", str(params)])
    assert r.exit_code == 3, r.output
    r = runner.invoke(app, ["serve", "--model", str(trained.scorer), "--crm", str(tmp_path / "none.duckdb"),
                            "--params", str(params)])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output


def test_a_posted_crm_record_gets_the_features_of_its_id(server, trained):
    """A lead posted with its own events and outcomes (as JSON, every value a string to cast)
    gets exactly the features the server computes from the CRM for its id; a record without a
    required field is a 400 naming the field, never its values."""
    _, service = server
    lead_id = _eligible_id(trained)
    with duckdb.connect(str(trained.raw), read_only=True) as con:
        rows = {name: json.loads(con.execute(f"SELECT * FROM {name} WHERE lead_id = ?", [lead_id]).df()
                                 .to_json(orient="records", date_format="iso", date_unit="us"))
                for name in ("leads", "events", "outcomes")}
    assert rows["events"], "the test lead needs events"
    posted = service.features_from_record(rows["leads"][0], rows["events"], rows["outcomes"], as_of=AS_OF)
    by_id = service.features_of(lead_id, AS_OF)
    pd.testing.assert_frame_equal(posted.drop(columns=ULP_TOLERANT), by_id.drop(columns=ULP_TOLERANT),
                                  check_exact=True)
    np.testing.assert_allclose(posted[ULP_TOLERANT].to_numpy(), by_id[ULP_TOLERANT].to_numpy(), rtol=1e-12, atol=0)
    no_source = {k: v for k, v in rows["leads"][0].items() if k != "source"}
    with pytest.raises(RequestError) as err:
        service.features_from_record(no_source, rows["events"], as_of=AS_OF)
    assert err.value.status == 400 and "['source']" in str(err.value)
    bad_event = [{**rows["events"][0], "occurred_at": "31/12/2024 10:00"}]
    with pytest.raises(RequestError) as err:
        service.features_from_record(rows["leads"][0], bad_event, as_of=AS_OF)
    assert err.value.status == 400 and "occurred_at" in str(err.value) and "31/12/2024" not in str(err.value)
