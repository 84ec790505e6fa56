"""`leadscore serve`: score one lead now, over HTTP (stdlib `http.server`, no new dependency).

What MLflow serving cannot do: take a lead id (or a lead record plus its recent events),
compute its features from the CRM with the training feature code
(`leadscore.features.build.build_features`, the code of the batch job and of training) and
answer probability, grade and reasons from the champion.

Endpoints (JSON in and out):

- ``GET /leads/<lead_id>[?as_of=YYYY-MM-DD[THH:MM:SS]]``: the lead's features from the CRM as
  of `as_of` (default: the server's `--as-of`, else now, UTC), then its score.
- ``POST /score`` with ``{"lead": {...}, "events": [...], "outcomes": [...], "as_of": ...}``:
  the same for a lead given in the request (the CRM contract's columns; `events` and
  `outcomes` optional), e.g. a form fill not yet in the CRM. Nothing of it is stored.
- ``GET /health``: ``{"status": "ok", "model_version": ..., "kind": ...}``.

An answer: ``lead_id, as_of, probability, grade, fit_grade, engagement_grade, rule_points,
rule_grade, reasons`` (a list of ``{code, text, contribution}``: top positive, then top
negative) and ``model_version``. Errors are ``{"error": <message>}`` with 404 (unknown lead or
path), 422 (the lead exists but is not eligible at `as_of`: created later, too old, already
converted or closed, the reason in words), 400 (bad request: a malformed `as_of`, body or
value), 500 (internal: the message names no data, and the traceback goes to the debug log).

`LeadService` holds the model (loaded and verified once at start,
`leadscore.serve.batch.load_scorer_model`; its signature must match the features) and **one
read-only DuckDB connection** to the CRM (`leadscore.io.open_source`), kept open. When the CRM is
opened, its tables are held in memory in the form the features read (`CACHES`: the lead
contract with its flags, each personal value normalised once, as in the batch job; events and
outcomes sorted by lead, so one lead's rows are one row group; `title_cache`: every distinct
job title parsed once), and so is the part of the feature query that does not depend on
`as_of`, for every lead (`HISTORY`, `leadscore.features.build.lead_history_sql`: each lead's
fit profile, its deduplicated positive events with their type codes, and the running decay
sums). A request is then ONE small statement (`leadscore.features.build.lead_feature_sql`):
eligibility, the window counts and the history read at `as_of`, with the lead id and time
passed as parameters. Only an ineligible or unknown lead takes the slow path (its rows copied
into the small `one.*` tables, to say why in words). Requests on that
connection take a lock, so they are answered one at a time per process (a
`ThreadingHTTPServer` keeps slow clients from blocking the socket); run several processes
behind a balancer for more throughput. The connection is reopened only when the CRM file
changes (inode, size or modification time), so a swapped-in export is picked up. Memory: the
caches hold the CRM's leads, events and outcomes plus the history (`benchmarks/serve.py` prints
the server's peak RSS).

DuckDB 2 plans every statement that reads a table again at each execution (prepared
statements included), so a request's cost is mostly planning: the statement is kept small.

Personal data: the CRM's personal columns never reach Python for `GET`; for `POST` the
record's e-mail is read only by DuckDB to derive the flags. Responses and logs carry the
pseudonymous lead id, never a record's values; the access log is at debug level.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pandas as pd

from leadscore.config import FeaturesConfig
from leadscore.data.ingest import INGESTED_TABLES, leads_sql
from leadscore.errors import InputError, ModelError, safe_error_text
from leadscore.features.build import history_tables, lead_feature_sql, lead_history_sql, titles_sql
from leadscore.schema import EVENT_TYPES, STAGES, TABLES

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # bytes of a POST body
MAX_EVENTS = 10_000  # events in a POST body
# the CRM's tables as the server holds them in memory (built when the CRM is opened)
CACHES = {"leads": "temp.lead_cache", "events": "temp.events_cache", "outcomes": "temp.outcomes_cache"}
# the part of the feature query that does not depend on as_of, for every lead of the CRM
# (`lead_history_sql`: profile, events, instants), built when the CRM is opened
HISTORY_NAME = "temp.history"
HISTORY = history_tables(HISTORY_NAME)


class RequestError(Exception):
    """A request the server answers with `status` and `message` (no data of the lead)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = int(status)
        self.message = message


def parse_as_of(value: str) -> dt.datetime:
    """`YYYY-MM-DD` (midnight) or an ISO datetime (no time zone, or converted to UTC)."""
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise RequestError(400, f"as_of {str(value)[:40]!r} is not a date (YYYY-MM-DD or "
                                "YYYY-MM-DDTHH:MM:SS)") from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class LeadService:
    """One lead in, its score out: the model and the CRM connection of `leadscore serve`.

    `scorer` is a `leadscore.serve.scorer.Scorer` (`from_model_uri` loads and verifies the
    exported MLflow model), `crm` the CRM DuckDB file (raw, with personal columns, as
    `leadscore score` reads it), `features` the features settings of training, `as_of` a
    fixed scoring time (None: now at each request).
    """

    def __init__(self, scorer, crm: str | Path, features: FeaturesConfig,
                 free_mail_domains: Sequence[str], *, as_of: dt.datetime | None = None):
        from leadscore.serve.batch import feature_kwargs

        self.scorer = scorer
        self.features = features
        self.as_of = as_of
        self._kwargs = feature_kwargs(features)
        self._domains = tuple(free_mail_domains)
        self.crm = Path(crm)
        self._lock = threading.Lock()
        self.con = self._open()
        self._lead_sql = lead_feature_sql(**CACHES, titles="temp.title_cache", history=HISTORY, **self._kwargs)

    def _stat(self) -> tuple[int, int, int]:
        st = self.crm.stat()
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _open(self):
        """One read-only connection to the CRM with the per-lead tables `one.*`."""
        from leadscore.io import open_source

        if not self.crm.is_file():
            raise InputError(f"--crm {self.crm}: CRM database not found (pass the DuckDB file that "
                             "`leadscore score` reads, e.g. data/raw/crm.duckdb)")
        self._opened = self._stat()
        con, _ = open_source("duckdb", self.crm)  # InputError when it is not a CRM
        try:
            con.execute("SET threads=1")
            con.execute("SET enable_progress_bar=false")
            con.execute("CREATE SCHEMA one")
            # the lead-only parts, computed once for the whole CRM: the lead contract with
            # its flags, and each distinct job title parsed (their regular expressions would
            # otherwise be compiled again for every request)
            con.execute(f"CREATE TEMP TABLE lead_cache AS {leads_sql('memory.main.leads', self._domains)}")
            con.execute(f"CREATE TEMP TABLE title_cache AS {titles_sql('temp.lead_cache')}")
            # each lead's events and outcomes stored together (sorted by lead), so the
            # feature statement's filter on one lead reads one row group, not the whole table
            for name in ("events", "outcomes"):
                con.execute(f"CREATE TEMP TABLE {name}_cache AS SELECT {_columns(name)} "
                            f"FROM memory.main.{name} ORDER BY lead_id")
            history = lead_history_sql(leads=CACHES["leads"], events=CACHES["events"], scope=CACHES["leads"],
                                       name=HISTORY_NAME, titles="temp.title_cache",
                                       max_lead_age_days=self.features.max_lead_age_days,
                                       half_life_days=self.features.half_life_days,
                                       content_types=self.features.content_types)
            for name, sql in history.items():  # sorted by lead, as the caches above
                con.execute(f"CREATE TEMP TABLE {name.removeprefix('temp.')} AS SELECT * FROM ({sql}) ORDER BY lead_id")
            con.execute("CREATE TABLE one.leads AS SELECT * FROM temp.lead_cache LIMIT 0")
            for name in ("events", "outcomes"):
                con.execute(f"CREATE TABLE one.{name} AS SELECT {_columns(name)} FROM memory.main.{name} LIMIT 0")
            # lead.py's explanation of an ineligible lead reads `all_outcomes`
            con.execute("CREATE VIEW one.all_outcomes AS SELECT * FROM one.outcomes")
            con.execute("SET search_path='one'")
        except BaseException:
            con.close()
            raise
        return con

    def _refresh(self) -> None:
        """Reopen the connection when the CRM file was replaced or changed since it was
        opened (a new export swapped in), so answers follow the CRM (caller holds the lock)."""
        try:
            changed = self._stat() != self._opened
        except OSError:
            changed = False  # mid-swap: keep answering from the open one
        if changed:
            log.info("the CRM file changed; reopening it")
            old, self.con = self.con, self._open()
            old.close()

    @classmethod
    def from_model_uri(cls, uri: str, crm: str | Path, features: FeaturesConfig,
                       free_mail_domains: Sequence[str], *, as_of: dt.datetime | None = None
                       ) -> LeadService:
        """Load the exported model at `uri` once (verified: `load_scorer_model`; missing,
        changed or mismatched is `ModelError`, exit 3), then open the CRM (`InputError`,
        exit 1)."""
        from leadscore.features.build import feature_catalog
        from leadscore.serve.batch import check_signature, inner_scorer, load_scorer_model

        model = load_scorer_model(uri)
        scorer = inner_scorer(model)
        if scorer is None:
            raise ModelError(f"{uri}: not a leadscore scorer model (export it with the export stage)")
        catalog = feature_catalog(features.windows_days, features.content_types)
        check_signature(model, catalog.names, catalog.categorical, uri)
        return cls(scorer, crm, features, free_mail_domains, as_of=as_of)

    def close(self) -> None:
        with self._lock:
            self.con.close()

    @property
    def model_version(self) -> str:
        return self.scorer.model_version

    # ---- features ---------------------------------------------------------------------------
    def _when(self, as_of: dt.datetime | None) -> dt.datetime:
        return as_of or self.as_of or _now()

    def _refusal(self, lead_id: str, as_of: dt.datetime) -> RequestError:
        """Why the lead held in the `one.*` tables has no feature row: 404 not in the CRM,
        422 not eligible (the reason in words)."""
        from leadscore.serve.lead import _why_not_eligible

        row = self.con.execute("SELECT created_at FROM one.leads").fetchall()
        if not row:
            return RequestError(404, f"lead '{lead_id}' is not in the CRM")
        return RequestError(422, _why_not_eligible(self.con, lead_id, row[0][0], as_of, self.features)
                            .replace("Pass a later --as-of.", "Pass a later as_of."))

    def _build(self, lead_id: str, as_of: dt.datetime) -> pd.DataFrame:
        """Features of the lead held in the `one.*` tables (caller holds the lock)."""
        from leadscore.features.build import build_features

        new_title = self.con.execute("SELECT count(*) FROM one.leads l ANTI JOIN temp.title_cache t "
                                     "ON t.job_title IS NOT DISTINCT FROM l.job_title").fetchall()[0][0]
        if new_title:  # a posted lead's title not seen in the CRM: parse it once
            self.con.execute(f"INSERT INTO temp.title_cache {titles_sql('one.leads')}")
        X = build_features(self.con, [as_of], titles="temp.title_cache", materialize=False, **self._kwargs)
        if X.empty:
            raise self._refusal(lead_id, as_of)
        return X

    def features_of(self, lead_id: str, as_of: dt.datetime | None = None) -> pd.DataFrame:
        """The lead's one feature row from the CRM as of `as_of` (`RequestError` 404 / 422):
        one statement over the caches, the lead id and time passed as parameters."""
        from leadscore.features.build import feature_frame

        when = self._when(as_of)
        with self._lock:
            self._refresh()
            with warnings.catch_warnings():  # one row: the copy Arrow makes is nothing
                warnings.simplefilter("ignore", UserWarning)
                table = self.con.execute(self._lead_sql, {"lead_id": lead_id, "as_of": when}).to_arrow_table()
            X = feature_frame(table, self.features.windows_days, self.features.content_types)
            if X.empty:  # not eligible, or not in the CRM: the slow path says which, in words
                for name in INGESTED_TABLES:
                    self.con.execute(f"DELETE FROM one.{name}")
                    self.con.execute(f"INSERT INTO one.{name} SELECT {_columns(name)} FROM {CACHES[name]} "
                                     "WHERE lead_id = ?", [lead_id])
                raise self._refusal(lead_id, when)
            return X

    def features_from_record(self, lead: Mapping, events: Sequence[Mapping] = (),
                             outcomes: Sequence[Mapping] = (), as_of: dt.datetime | None = None
                             ) -> pd.DataFrame:
        """The feature row of a lead given as a record (the CRM contract's `leads` columns)
        with its events and outcomes (`RequestError` 400 for a bad record, 422 ineligible)."""
        when = self._when(as_of)
        lead_id = lead.get("lead_id") if isinstance(lead, Mapping) else None
        if not isinstance(lead_id, str) or not lead_id:
            raise RequestError(400, "'lead' must be an object with a 'lead_id' string")
        frames = {"leads": _frame("leads", [lead], lead_id),
                  "events": _frame("events", events, lead_id),
                  "outcomes": _frame("outcomes", outcomes, lead_id)}
        _check_vocabulary(frames["events"], "event_type", EVENT_TYPES, "events")
        _check_vocabulary(frames["outcomes"], "stage", STAGES, "outcomes")
        with self._lock:
            self._refresh()
            self.con.execute("SELECT 1").fetchall()  # finish any open result (register needs it)
            try:
                typed = {}
                for name, df in frames.items():
                    self.con.register(f"_in_{name}", df)
                    cols = TABLES[name].columns
                    casts = {c: f'TRY_CAST("{c}" AS {t})' for c, t in cols.items()}
                    typed[name] = ("(SELECT " + ", ".join(f'{cast} AS "{c}"' for c, cast in casts.items())
                                   + f" FROM _in_{name})")
                    # one query per table: per column, values that do not cast, then required
                    # values that are missing
                    required = [c for c in TABLES[name].required if c in cols]
                    counts = self.con.execute("SELECT " + ", ".join(
                        [f'count(*) FILTER (WHERE "{c}" IS NOT NULL AND {casts[c]} IS NULL)' for c in cols]
                        + [f"count(*) FILTER (WHERE {casts[c]} IS NULL)" for c in required])
                        + f" FROM _in_{name}").fetchall()[0]
                    bad = [c for c, n in zip(cols, counts, strict=False) if n]
                    if bad:
                        raise RequestError(400, f"{name}: value(s) of {bad} do not match the CRM "
                                                f"contract types ({', '.join(f'{c} {cols[c]}' for c in bad)})")
                    missing = [c for c, n in zip(required, counts[len(cols):], strict=True) if n]
                    if missing:
                        raise RequestError(400, f"{name}: required field(s) {missing} missing")
                for name in INGESTED_TABLES:
                    self.con.execute(f"DELETE FROM one.{name}")
                    select = (leads_sql(typed["leads"], self._domains) if name == "leads"
                              else f"SELECT {_columns(name)} FROM {typed[name]}")
                    self.con.execute(f"INSERT INTO one.{name} {select}")
                return self._build(lead_id, when)
            finally:
                self.con.execute("SELECT 1").fetchall()
                for name in frames:
                    self.con.unregister(f"_in_{name}")
                    self.con.execute(f"DELETE FROM one.{name}")  # nothing of a posted lead stays

    # ---- scores -----------------------------------------------------------------------------
    def answer(self, X: pd.DataFrame) -> dict[str, Any]:
        """The JSON answer for a one-row feature table."""
        out, why = self.scorer.explain(X)
        s = out.iloc[0]
        reasons = [{"code": str(r["code"]), "text": str(r["text"]),
                    "contribution": float(r["contribution"])} for r in why.to_lists()[0]]
        return {
            "lead_id": str(X["lead_id"].iloc[0]),
            "as_of": pd.Timestamp(X["as_of"].iloc[0]).isoformat(),
            "probability": float(s["probability"]),
            "grade": _str(s["grade"]), "fit_grade": _str(s["fit_grade"]),
            "engagement_grade": _str(s["engagement_grade"]),
            "rule_points": _num(s["rule_points"]), "rule_grade": _str(s["rule_grade"]),
            "reasons": reasons,
            "model_version": self.model_version,
        }

    def score_lead(self, lead_id: str, as_of: dt.datetime | None = None) -> dict[str, Any]:
        return self.answer(self.features_of(lead_id, as_of))

    def score_record(self, body: Any) -> dict[str, Any]:
        """`POST /score`: `body` is the parsed JSON object."""
        if not isinstance(body, Mapping) or not isinstance(body.get("lead"), Mapping):
            raise RequestError(400, "the body must be a JSON object with 'lead' (an object) and "
                                    "optional 'events', 'outcomes' (lists) and 'as_of'")
        events, outcomes = body.get("events") or [], body.get("outcomes") or []
        if not isinstance(events, list) or not isinstance(outcomes, list):
            raise RequestError(400, "'events' and 'outcomes' must be lists of objects")
        if len(events) > MAX_EVENTS:
            raise RequestError(400, f"at most {MAX_EVENTS:,} events per request")
        as_of = body.get("as_of")
        when = parse_as_of(as_of) if isinstance(as_of, str) else None
        if as_of is not None and not isinstance(as_of, str):
            raise RequestError(400, "'as_of' must be a string (YYYY-MM-DD)")
        return self.answer(self.features_from_record(body["lead"], events, outcomes, when))


def _columns(table: str) -> str:
    """The ingested contract's columns of `table`, quoted, in contract order."""
    return ", ".join(f'"{c}"' for c in INGESTED_TABLES[table].columns)


def _str(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def _frame(table: str, rows: Sequence[Any], lead_id: str) -> pd.DataFrame:
    """Records of `table` as a frame with exactly the contract's columns (missing: null,
    lead_id: the lead's, event_id: a position; unknown fields are ignored), all values as
    strings for DuckDB to cast."""
    cols = list(TABLES[table].columns)
    if any(not isinstance(r, Mapping) for r in rows):
        raise RequestError(400, f"'{table}' must hold JSON objects")
    other = [r.get("lead_id") for r in rows if r.get("lead_id") not in (None, lead_id)]
    if other:
        raise RequestError(400, f"{table}: {len(other)} record(s) belong to another lead_id")
    def value(i: int, r: Mapping, c: str) -> str | None:
        default = lead_id if c == "lead_id" else (f"posted-{i}" if c == "event_id" else None)
        v = r.get(c, default)
        return None if v is None else str(v)

    data = {c: [value(i, r, c) for i, r in enumerate(rows)] for c in cols}
    return pd.DataFrame(data, columns=cols, dtype=object)


def _check_vocabulary(df: pd.DataFrame, column: str, allowed: Sequence[str], table: str) -> None:
    bad = sorted({v for v in df[column] if v is not None and v not in allowed})
    if bad:
        raise RequestError(400, f"{table}.{column}: {len(bad)} unknown value(s); allowed: "
                                f"{', '.join(allowed)}")


# ---- HTTP ----------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    service: LeadService  # set on the subclass made by `make_server`
    server_version = "leadscore"
    sys_version = ""
    protocol_version = "HTTP/1.1"  # keep-alive: one client, many requests
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def _handle(self, method: str) -> None:
        t0 = time.perf_counter()
        status, doc = 500, {"error": "internal error"}
        try:
            status, doc = 200, self._route(method)
        except RequestError as err:
            status, doc = err.status, {"error": err.message}
        except Exception as err:  # never a traceback to the client
            log.error("internal error (%s): %s", type(err).__name__, safe_error_text(err))
            log.debug("traceback", exc_info=True)
        body = json.dumps(doc, allow_nan=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        log.debug("%s %s %d %.1f ms", method, urlsplit(self.path).path, status,
                  (time.perf_counter() - t0) * 1e3)

    def _route(self, method: str) -> dict[str, Any]:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        if method == "GET" and parts == ["health"]:
            return {"status": "ok", "model_version": self.service.model_version,
                    "kind": self.service.scorer.kind}
        if method == "GET" and len(parts) == 2 and parts[0] == "leads":
            query = parse_qs(url.query)
            as_of = parse_as_of(query["as_of"][0]) if "as_of" in query else None
            lead_id = unquote(parts[1])
            if not lead_id or len(lead_id) > 200:
                raise RequestError(400, "a lead id is 1 to 200 characters")
            return self.service.score_lead(lead_id, as_of)
        if method == "POST" and parts == ["score"]:
            return self.service.score_record(self._json_body())
        if parts == ["score"] or (len(parts) == 2 and parts[0] == "leads") or parts == ["health"]:
            raise RequestError(405, f"{method} is not allowed here")
        raise RequestError(404, "not found: use GET /leads/<lead_id>, POST /score or GET /health")

    def _json_body(self) -> Any:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise RequestError(400, "bad Content-Length") from None
        if length <= 0 or length > MAX_BODY:
            raise RequestError(400, f"a JSON body of 1 byte to {MAX_BODY:,} bytes is required")
        try:
            return json.loads(self.rfile.read(length))
        except (ValueError, UnicodeDecodeError):
            raise RequestError(400, "the body is not valid JSON") from None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # the access line above (path only, at debug); http.server's own goes to stderr


def make_server(service: LeadService, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """The HTTP server answering with `service` (not started; `serve_forever` it)."""
    handler = type("LeadHandler", (_Handler,), {"service": service})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve(service: LeadService, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until interrupted (Ctrl-C / SIGINT), then close the CRM connection."""
    server = make_server(service, host, port)
    log.info("serving model %s (%s) on http://%s:%d (GET /leads/<id>, POST /score, GET /health)",
             service.model_version, service.scorer.kind, host, server.server_address[1])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopped")
    finally:
        server.server_close()
        service.close()
