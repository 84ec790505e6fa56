"""The `leadscore` command line for operators.

Each command reads params.yaml at the edge and calls the same library functions as the DVC
stages, so there is no second copy of any logic. Every command exits non-zero on failure.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import typer

from leadscore.config import load_params
from leadscore.errors import EXIT_CODES, ConfigError, InputError, exit_on_error
from leadscore.logs import setup_logging

_EXIT_TABLE = "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items())
app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help=f"Predictive B2B lead scoring.\n\nExit codes (every command): {_EXIT_TABLE}.")
log = logging.getLogger("leadscore")

def command(fn: Callable) -> Callable:
    """Register `fn` as a command whose every failure ends in a message and an exit code
    from the one table (`leadscore.errors`), never in a traceback."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with exit_on_error(log):
            return fn(*args, **kwargs)

    return app.command()(run)


PARAMS = typer.Option(Path("params.yaml"), "--params", help="params.yaml to read.")


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    setup_logging(logging.DEBUG if verbose else logging.INFO)


@command
def generate(
    out: Path = typer.Option(Path("data/raw/crm.duckdb"), "--out", help="DuckDB file to write."),
    n_leads: int | None = typer.Option(None, "--leads", help="Override generate.n_leads."),
    next_quarters: int = typer.Option(0, "--next-quarter", min=0, max=8,
                                      help="Continue the CRM by N quarters after generate.end with shifted "
                                           "behaviour (a new channel, a case-study campaign, a seasonal dip); "
                                           "the history stays identical."),
    params: Path = PARAMS,
) -> None:
    """Generate the synthetic CRM (leads, events, outcomes) into a DuckDB file."""
    from leadscore.data.synthetic import generate_crm, generate_next_quarter

    if out.is_dir():
        raise ConfigError(f"--out {out}: is a folder; give the DuckDB file to write, e.g. {out / 'crm.duckdb'}")
    p = load_params(params)
    cfg = p.generate if n_leads is None else p.generate.model_copy(update={"n_leads": n_leads})
    summary = (generate_next_quarter(cfg, p.seed, out, quarters=next_quarters) if next_quarters
               else generate_crm(cfg, p.seed, out))
    typer.echo(
        f"wrote {out}: {summary['leads']:,} leads, {summary['events']:,} events, "
        f"{summary['outcomes']:,} outcomes"
    )


@command
def validate(
    source: Path = typer.Argument(..., help="A DuckDB file, or a folder of Parquet/CSV files."),
    kind: str = typer.Option("duckdb", "--kind", help="duckdb | parquet | csv"),
    out: Path | None = typer.Option(None, "--out", help="Write the validated CRM here."),
    params: Path = PARAMS,
) -> None:
    """Ingest and validate a CRM source; print a summary; exit 1 if it fails the checks."""
    from leadscore.data.ingest import ingest
    from leadscore.data.validate import validate_crm

    p = load_params(params)
    with tempfile.TemporaryDirectory() as tmp:
        ingested = Path(tmp) / "crm.duckdb"
        ingest(kind, source, ingested, p.ingest.free_mail_domains)
        target = out or Path(tmp) / "validated.duckdb"
        result = validate_crm(ingested, target, now=dt.datetime.now(dt.UTC), cfg=p.validate_)
    for name in ("leads", "events", "outcomes"):
        m = result.metrics[name]
        typer.echo(f"{name}: {m['rows_in']:,} rows in, {m['rows_out']:,} clean, {m['rows_quarantined']:,} quarantined")
    typer.echo(f"expectations: {result.metrics['expectations']}")


@command
def metrics(
    path: Path = typer.Option(Path("reports/evaluate.json"), "--path",
                              help="the evaluate stage's record (metrics/evaluate.json holds only its headline)"),
) -> None:
    """Print the out-of-time comparison of the rules, logistic regression and LightGBM."""
    from leadscore.io import read_json
    from leadscore.modeling.evaluate import metrics_table

    if not path.is_file():
        raise InputError(f"{path}: not found; run `make run` (or `dvc repro evaluate`) first")
    doc = read_json(path)
    try:
        table = metrics_table(doc)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise InputError(f"{path}: not the evaluate stage's record ({type(err).__name__}: "
                         f"{str(err)[:80]} missing or malformed); rerun `dvc repro evaluate`") from None
    typer.echo(table)


@command
def score(
    as_of: dt.datetime | None = typer.Option(None, "--as-of", formats=["%Y-%m-%d"],
                                             help="Score as of this date (default: score.as_of, else the data cutoff)."),
    source_kind: str | None = typer.Option(None, "--source-kind", help="duckdb | parquet | csv (default: ingest.source)"),
    source: str | None = typer.Option(None, "--source", help="DuckDB file or folder of files (default: ingest.path); "
                                                         "with --engine spark also a URI (s3a://...) or a database."),
    out: Path = typer.Option(..., "--out", help="Output file (.parquet, .csv or .duckdb)."),
    fmt: str | None = typer.Option(None, "--format", help="parquet | csv | duckdb (default: from --out)"),
    table: str = typer.Option("scores", "--table", help="Table name for --format duckdb."),
    model: str | None = typer.Option(None, "--model", help="MLflow model folder or models:/ URI (default: the champion alias, models:/<export.registered_model>@<export.champion_alias>)."),
    chunk_size: int | None = typer.Option(None, "--chunk-size", min=1, help="Leads per chunk (default: score.chunk_size)."),
    run_id: str | None = typer.Option(None, "--run-id", help="Run id (default: hash of as_of, model, input)."),
    metrics: Path | None = typer.Option(None, "--metrics", help="Write a JSON summary here."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
    chunk_pause_s: float = typer.Option(0.0, "--chunk-pause-s", hidden=True, help="Testing: pause after each chunk."),
    changed_since: dt.datetime | None = typer.Option(
        None, "--changed-since", formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"],
        help="Rescore only leads created, or with events or outcomes, at or after this time (UTC) and merge "
             "them into the published table (implies --incremental)."),
    incremental: bool = typer.Option(
        False, "--incremental/--full", help="Rescore only the leads changed since the published run's "
                                           "watermark and merge them (a full run when nothing can be merged)."),
    engine: str = typer.Option("duckdb", "--engine", help="duckdb (default) | spark: the same job on Spark "
                                                         "(--source-kind parquet|table, --format parquet|table)."),
    params: Path = PARAMS,
) -> None:
    """Score the live lead base (`leadscore.serve.batch.score_with_params`); with --incremental or
    --changed-since only the changed leads, merged into the published table
    (`leadscore.serve.incremental`). Exit codes: 1 bad input, validation or quarantine budget (or
    another run published meanwhile), 2 config or usage, 3 model missing or mismatched."""
    from leadscore.io import check_table_name, write_json
    from leadscore.serve.batch import score_with_params

    check_table_name(table)  # the one identifier check (leadscore.io), before anything runs
    p = load_params(params)
    if model is None or model.startswith("models:"):
        _registry(params)  # registry URIs resolve against the project's tracking store
    if model is None:
        model = f"models:/{p.export.registered_model}@{p.export.champion_alias}"
    if engine == "spark":
        _score_on_spark(p, out=out, model=model, as_of=as_of, source_kind=source_kind, source=source, fmt=fmt,
                        run_id=run_id, metrics=metrics, unsupported={"--changed-since": changed_since is not None,
                                                                     "--incremental": incremental,
                                                                     "--chunk-size": chunk_size is not None})
        return
    if engine != "duckdb":
        raise ConfigError(f"--engine {engine!r}: use duckdb or spark")
    result = score_with_params(
        p, out=out, model_uri=model, as_of=as_of, source_kind=source_kind,
        source=Path(source) if source else None, chunk_size=chunk_size, fmt=fmt, table=table, run_id=run_id,
        progress=progress, chunk_pause_s=chunk_pause_s, changed_since=changed_since, incremental=incremental)
    if metrics is not None:
        write_json(result.to_dict(), metrics)
    mode = result.summary.get("mode", "full")
    speed = result.summary.get("speed_to_lead") or {}
    lag = (f"; lag median {speed['median_s']:,.0f} s, p95 {speed['p95_s']:,.0f} s" if speed.get("leads") else "")
    typer.echo(f"scored {result.leads_scored:,} leads as of {result.as_of.date()} ({mode}; "
               f"{result.leads_quarantined:,} quarantined; table {result.summary.get('table_rows', 0):,} rows{lag}) "
               f"-> {result.out} [run {result.run_id}]")


def _score_on_spark(p, *, out: Path, model: str, as_of, source_kind: str | None, source: str | None,
                    fmt: str | None, run_id: str | None, metrics: Path | None, unsupported: dict[str, bool]) -> None:
    """`leadscore score --engine spark` (`leadscore.spark.job`)."""
    from leadscore.io import write_json

    used = [flag for flag, on in unsupported.items() if on]
    if used:
        raise ConfigError(f"{', '.join(used)}: not available with --engine spark (full runs only)")
    from leadscore.spark.job import score_spark_with_params

    summary = score_spark_with_params(p, out=str(out), model_uri=model, as_of=as_of,
                                      source_kind=source_kind or "parquet",
                                      source=str(source or p.ingest.path), fmt=fmt or "parquet", run_id=run_id)
    if metrics is not None:
        write_json(summary, metrics)
    typer.echo(f"scored {summary['leads_scored']:,} leads as of {summary['as_of'][:10]} on Spark "
               f"({summary['leads_quarantined']:,} quarantined) -> {summary['out']} [run {summary['run_id']}]")


def _registry(params: Path):
    """The params, with MLflow pointed at their tracking store."""
    from leadscore.tracking import setup_mlflow

    p = load_params(params)
    setup_mlflow(p.mlflow.tracking_uri, p.mlflow.experiment)
    return p


CHAMPION_COPY = typer.Option(Path("models/champion"), "--champion-out",
                             help="Refresh this local copy of the champion (what `dvc repro` scores).")


@command
def promote(
    version: str | None = typer.Option(None, "--version", help="Registry version to gate (default: the challenger alias)."),
    force: bool = typer.Option(False, "--force", help="Promote even if a check fails (needs --reason)."),
    reason: str | None = typer.Option(None, "--reason", help="Why the gate is overridden (recorded in the registry)."),
    train: Path = typer.Option(Path("data/processed/train.parquet"), "--train", help="Training table (the window: its test slice)."),
    rules: Path = typer.Option(Path("models/rules.json"), "--rules", help="Rule baseline."),
    report: Path = typer.Option(Path("reports/gate.json"), "--report", help="Write the gate report here."),
    champion_out: Path = CHAMPION_COPY,
    params: Path = PARAMS,
) -> None:
    """Gate the challenger against the champion; only a pass (or --force --reason) moves the
    champion alias. Exit 4 when the gate refuses."""
    from leadscore.errors import GuardError
    from leadscore.io import read_parquet, write_json
    from leadscore.lifecycle.gate import format_gate
    from leadscore.lifecycle.promotion import challenger_from_registry, publish_champion, run_gate
    from leadscore.modeling.baseline import load_rules
    from leadscore.modeling.splits import split_from_params

    if force and not (reason and reason.strip()):
        raise ConfigError('--force needs --reason "why the gate is overridden"')
    p = _registry(params)
    with tempfile.TemporaryDirectory(prefix="leadscore-promote-") as tmp:
        challenger, ref = challenger_from_registry(p.export.registered_model, p.export.challenger_alias,
                                                   Path(tmp) / "challenger", version)
        for path in (train, rules):
            if not path.exists():
                raise InputError(f"{path}: not found (run `make run` or `leadscore retrain` first)")
        window = split_from_params(read_parquet(train), p).test
        doc, _, _ = run_gate(window, challenger, ref, load_rules(rules), gate=p.gate, export=p.export,
                             seed=p.seed, workdir=Path(tmp), force_reason=reason if force else None)
    write_json(doc, report)
    typer.echo(format_gate(doc))
    if doc["promoted"]:
        publish_champion(p.export, champion_out)
    elif doc["decision"].startswith("refused"):
        failed = [c["name"] for c in doc["checks"] if not c["passed"]]
        why = ([f"failed check(s) {', '.join(failed)}"] if failed else []) + (
            ["a rollback left it earlier (override with --force --reason)"]
            if "rolled back" in doc["decision"] else [])
        raise GuardError(f"the gate refused version {ref.registry_version}: {'; '.join(why)}; see {report}")


@command
def rollback(
    reason: str | None = typer.Option(None, "--reason", help="Why (recorded in the registry)."),
    champion_out: Path = CHAMPION_COPY,
    params: Path = PARAMS,
) -> None:
    """Move the champion alias one step back in its history (a second rollback goes one
    step further; the version left behind is never promoted again by the gate alone)."""
    from leadscore.lifecycle.promotion import publish_champion
    from leadscore.lifecycle.registry import rollback as do_rollback

    p = _registry(params)
    version = do_rollback(p.export.registered_model, p.export.champion_alias, reason=reason)
    publish_champion(p.export, champion_out)
    typer.echo(f"{p.export.registered_model}@{p.export.champion_alias} -> version {version}")


@command
def history(params: Path = PARAMS) -> None:
    """Every move of the champion alias: when, who, which version, why."""
    from leadscore.lifecycle.registry import alias_log

    p = _registry(params)
    entries = alias_log(p.export.registered_model, p.export.champion_alias)
    if not entries:
        typer.echo("no champion moves recorded yet")
    for e in entries:
        typer.echo(f"{e['at']}  {e['action']:<8} version {e['version']} (was {e['previous']}) "
                   f"by {e['by']}: {e['reason'] or ''}")


@command
def retrain(
    cutoff: dt.datetime | None = typer.Option(None, "--cutoff", formats=["%Y-%m-%d"],
                                              help="Use only data up to this date (default: features.data_cutoff, else all)."),
    crm: Path = typer.Option(Path("data/interim/validated.duckdb"), "--crm", help="Validated CRM (DuckDB)."),
    out: Path = typer.Option(Path("models/retrain"), "--out", help="Folder for every artifact of this retrain."),
    params: Path = PARAMS,
) -> None:
    """Train a challenger on the newest mature data and register it as `challenger`. Never
    moves `champion`: run `leadscore promote` next."""
    from leadscore.lifecycle.retrain import retrain as do_retrain

    p = _registry(params)
    if not crm.exists():
        raise InputError(f"{crm}: not found (run `dvc repro validate` or `leadscore validate --out`)")
    r = do_retrain(crm, p, out, cutoff=cutoff.date() if cutoff else None)
    e = r.export
    typer.echo(f"challenger: {e['kind']} model {e['model_version']} -> {e['registered_model']} "
               f"version {e['registry_version']} @{e['alias']} ({r.why})")


@command
def backtest(
    train: Path = typer.Option(Path("data/processed/train.parquet"), "--train", help="Training table."),
    catalog: Path = typer.Option(Path("data/processed/feature_catalog.json"), "--catalog", help="Feature catalog."),
    out: Path | None = typer.Option(None, "--out", help="Write metrics/backtest.json-style JSON here."),
    params: Path = PARAMS,
) -> None:
    """Rolling-origin backtest of the rules, the logistic check and LightGBM (fold after fold,
    the same training procedure; backtest.* in params.yaml)."""
    from leadscore.features.catalog import load_catalog
    from leadscore.io import read_parquet, write_json
    from leadscore.lifecycle.backtest import backtest_from_params, format_backtest

    p = load_params(params)
    for path in (train, catalog):
        if not path.exists():
            raise InputError(f"{path}: not found (run `dvc repro features` first)")
    result = backtest_from_params(p, read_parquet(train), load_catalog(catalog))
    typer.echo(format_backtest(result))
    if out is not None:
        write_json(result.to_dict(), out)


@command
def report(
    out: Path = typer.Option(Path("reports/report.html"), "--out", help="HTML file to write."),
    track: bool = typer.Option(True, "--track/--no-track", help="Log the file to MLflow."),
    root: Path = typer.Option(Path("."), "--root", help="Project folder holding the pipeline outputs."),
    params: Path = PARAMS,
) -> None:
    """Build the marketing report (one self-contained HTML file) from the pipeline outputs."""
    from leadscore.report.build import (
        ReportPaths,
        build_report,
        load_report_inputs,
        log_report,
        write_report,
    )

    p = load_params(params)
    inputs = load_report_inputs(ReportPaths.in_project(root), report_path=out)
    html = build_report(inputs, p.report, generated_at=dt.datetime.now(dt.UTC))
    write_report(html, out)
    if track and p.report.log_mlflow:
        log_report(out, inputs, tracking_uri=p.mlflow.tracking_uri, experiment=p.mlflow.experiment)
    typer.echo(f"wrote {out}")

@command
def explain(
    lead_id: str = typer.Option(..., "--lead-id", help="The lead to explain."),
    as_of: str | None = typer.Option(None, "--as-of", help="Date (YYYY-MM-DD); default: the data cutoff."),
    crm: Path = typer.Option(Path("data/interim/validated.duckdb"), "--crm", help="Validated CRM (DuckDB)."),
    model: Path = typer.Option(Path("models/lightgbm"), "--model", help="LightGBM model folder."),
    grading: Path = typer.Option(Path("models/grading.json"), "--grading", help="Grade cut points."),
    catalog: Path = typer.Option(Path("data/processed/feature_catalog.json"), "--catalog",
                                 help="Feature catalog."),
    params: Path = PARAMS,
) -> None:
    """One lead's key features, probability, grade and reasons, as of a date."""
    from leadscore.explain.grades import load_grading
    from leadscore.features.catalog import load_catalog
    from leadscore.modeling.estimators import load_model
    from leadscore.serve.lead import key_values, lead_features
    from leadscore.serve.scorer import Scorer

    p = load_params(params)
    when = None
    if as_of is not None:
        try:
            when = dt.datetime.combine(dt.date.fromisoformat(as_of), dt.time())
        except ValueError:
            raise ConfigError(f"--as-of {as_of!r} is not a date (use YYYY-MM-DD)") from None
    for f in (catalog, grading):  # the model's files first, then the CRM
        if not f.exists():
            raise FileNotFoundError(f"{f}: not found (run `dvc repro explain`)")
    _check_crm(crm)
    scorer = Scorer.from_model(load_model(model), load_grading(grading), load_catalog(catalog),
                               n_reasons=p.explain.n_reasons)
    X, when = lead_features(crm, lead_id, when, p.features)
    scored, why = scorer.explain(X)
    s = scored.iloc[0]
    typer.echo(f"lead {lead_id} as of {when:%Y-%m-%d}")
    typer.echo(f"  probability of {p.features.target_stage} within {p.features.horizon_days} days: "
               f"{s['probability']:.1%}")
    typer.echo(f"  grade {s['grade']}: fit {s['fit_grade']} (profile, {s['fit_score']:+.2f} log-odds), "
               f"engagement {s['engagement_grade']} (behaviour, {s['engagement_score']:+.2f} log-odds)")
    for group, title in (("fit", "profile"), ("engagement", "activity")):
        rows = [text for g, _, text in key_values(X, scorer.catalog, scorer.feature_names) if g == group]
        typer.echo(f"  {title}: " + ("; ".join(rows) if rows else "none recorded"))
    reasons = why.to_lists()[0]
    for sign, title in (("+", "raises the score"), ("-", "lowers the score")):
        typer.echo(f"  {title}:")
        picked = [r for r in reasons if r["code"].endswith(sign)]
        for r in picked:
            typer.echo(f"    {r['contribution']:+.3f}  {r['text']}  [{r['code']}]")
        if not picked:
            typer.echo("    (nothing)")


def _check_crm(crm: Path) -> None:
    """`InputError` unless `crm` is a DuckDB file holding the leads, events and outcomes tables."""
    import duckdb

    from leadscore.errors import safe_error_text

    if not crm.is_file():
        raise InputError(f"--crm {crm}: not found (run `dvc repro validate`, or pass --crm)")
    try:
        con = duckdb.connect(str(crm), read_only=True)
        try:
            tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        finally:
            con.close()
    except duckdb.Error as err:
        raise InputError(f"--crm {crm}: not a DuckDB CRM ({safe_error_text(err, limit=120)})") from None
    missing = sorted({"leads", "events", "outcomes"} - tables)
    if missing:
        raise InputError(f"--crm {crm}: not a CRM; table(s) {missing} missing (pass the validated "
                         f"CRM, data/interim/validated.duckdb)")


@command
def serve(
    model: str = typer.Option("models/champion", "--model",
                              help="Exported MLflow model folder or models:/ URI (loaded and verified once)."),
    crm: Path | None = typer.Option(None, "--crm", help="CRM DuckDB file, as `leadscore score` reads it "
                                                        "(default: ingest.path)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port (0: any free port)."),
    as_of: str | None = typer.Option(None, "--as-of", help="Score every request as of this date or time "
                                                           "(default: now, UTC; a request's ?as_of= wins)."),
    params: Path = PARAMS,
) -> None:
    """Score one lead now over HTTP: GET /leads/<lead_id>[?as_of=], POST /score (a lead record plus
    its events), GET /health (`leadscore.serve.server`). Exit codes at start: 3 model missing or
    mismatched, 1 CRM missing or unreadable, 2 bad option."""
    from leadscore.serve.server import LeadService, RequestError, parse_as_of
    from leadscore.serve.server import serve as run_server

    p = load_params(params)
    when = None
    if as_of is not None:
        try:
            when = parse_as_of(as_of)
        except RequestError as err:
            raise ConfigError(f"--as-of: {err.message}") from None
    if model.startswith("models:"):
        _registry(params)
    service = LeadService.from_model_uri(model, crm or Path(p.ingest.path), p.features,
                                         p.ingest.free_mail_domains, as_of=when)
    run_server(service, host, port)


@command
def flat(
    mapping: Path = typer.Option(..., "--mapping", help="Mapping YAML of a flat CRM export."),
    out: Path = typer.Option(..., "--out", help="Output folder (metrics/, models/, report.html, scores.parquet)."),
    cv: int = typer.Option(0, "--cv", min=0, help="Also report a random stratified K-fold ROC-AUC (e.g. 5; 0 = off)."),
    allow: list[str] = typer.Option([], "--allow", help="Keep a screened column for this run (adds to the mapping's allow list)."),
    rows: int | None = typer.Option(None, "--rows", min=100, help="Read only the first N rows (a quick try)."),
    backtest: bool = typer.Option(False, "--backtest", help="Also run the rolling-origin backtest (4 folds: blocks of 5% "
                                  "of the rows, or months of created_at) into metrics/backtest.json and the report. "
                                  "Needs created_at or time_order: rows in the mapping."),
) -> None:
    """Flat-export mode: one aggregated table in, model + report + scores out. Validates the
    mapping and the file, screens for leakage, trains the rules and the models, evaluates,
    explains, scores and reports; with --backtest also backtests rules vs logistic vs
    LightGBM fold after fold (leadscore.flat.backtest). Exit codes: see `leadscore --help`."""
    from leadscore.flat.mapping import load_mapping
    from leadscore.flat.outputs import check_out_folder
    from leadscore.flat.run import run_flat
    from leadscore.lifecycle.backtest import format_backtest

    check_out_folder(out)  # refuse before reading anything
    m = load_mapping(mapping)
    result = run_flat(m, out, nrows=rows, cv_folds=cv, extra_allow=tuple(allow), backtest=backtest)
    ev = result.metrics
    typer.echo(f"{ev['split']['note']}")
    typer.echo("ROC-AUC on the test slice: " + ", ".join(
        f"{k} {ev[k]['roc_auc']:.3f}" for k in ("rules", "logistic", "lightgbm")))
    if result.cv:
        typer.echo(f"random stratified {result.cv['folds']}-fold ROC-AUC: " + ", ".join(
            f"{k} {result.cv[k]['roc_auc_mean']:.3f}" for k in ("rules", "logistic", "lightgbm")))
    typer.echo(f"wrote {out}/metrics/evaluate.json, {out}/report.html, {out}/scores.parquet "
               f"in {result.seconds:.0f}s")
    if result.backtest is not None:
        typer.echo(format_backtest(result.backtest))
        typer.echo(f"wrote {out}/metrics/backtest.json and the report's backtest section")


@command
def monitor(
    history: Path | None = typer.Option(None, "--history", help="Score history DuckDB file (default: monitor.history)."),
    report: Path | None = typer.Option(None, "--report", help="Also write the JSON report here."),
    source: Path | None = typer.Option(
        None, "--source", help="CRM whose outcomes judge earlier runs (default: ingest.path)."),
    params: Path = PARAMS,
) -> None:
    """Check the latest scoring run: PSI of each feature, of the probability and of the grade
    mix against the training reference and the previous run; null rates, volume, freshness;
    and, for runs whose label window has passed in the CRM, realized ROC-AUC, calibration
    and the lift over the control arm (thresholds: monitor.* in params.yaml). Prints the
    alert summary; exit 4 when a check alerts (so a scheduler can page), 1 when the history
    or the CRM is missing or the history has no run."""
    from leadscore.io import write_json
    from leadscore.monitor.checks import format_report
    from leadscore.monitor.run import monitor_with_params, raise_on_alert

    p = load_params(params)
    path = history or Path(p.monitor.history)
    if not path.exists():
        raise InputError(f"{path}: no score history (run `leadscore score` or `dvc repro score` first)")
    doc = monitor_with_params(p, history=path, source=source)
    if report is not None:
        write_json(doc, report)
    typer.echo(format_report(doc))
    if doc["status"] in ("no_runs", "no_reference"):
        raise InputError(f"{path}: {doc['message']}")
    raise_on_alert(doc, report)


@command
def forget(
    lead_id: list[str] = typer.Option([], "--lead-id", help="A lead to forget (repeatable)."),
    from_file: Path | None = typer.Option(None, "--from-file", help="A file of lead ids, one per line."),
    out: list[Path] = typer.Option([Path("data/scores/scores.parquet")], "--out",
                                   help="A published score output (repeatable; .parquet, .csv or .duckdb)."),
    history: Path | None = typer.Option(None, "--history", help="Score history DuckDB file (default: monitor.history)."),
    features: list[Path] = typer.Option([Path("data/processed")], "--features",
                                        help="A folder of cached feature tables (*.parquet; repeatable)."),
    params: Path = PARAMS,
) -> None:
    """Erase leads: remove them from the published scores and quarantine (atomically), the
    staged scoring runs, the score history's per-lead rows and the cached feature tables, and
    record the erasure (a keyed hash of each id and the time, never the id) in the history's
    `erasures` table. Exit 2 without an id, 1 on an unreadable file."""
    from leadscore.serve.erasure import forget as do_forget
    from leadscore.serve.erasure import read_lead_ids

    ids = read_lead_ids(lead_id, from_file)
    p = load_params(params)
    if missing := [str(o) for o in out if not o.parent.exists()]:
        raise InputError(f"--out {', '.join(missing)}: the folder does not exist (nothing was forgotten)")
    result = do_forget(ids, outputs=out, history=history or Path(p.monitor.history), feature_folders=features)
    for where, n in sorted(result.removed.items()):
        typer.echo(f"{where}: {n:,} row(s) removed")
    typer.echo(f"forgot {result.leads:,} lead(s); {result.staged_runs_cleared} staged run(s) cleared; "
               "erasure recorded (hashed ids only)")


if __name__ == "__main__":
    app()
