"""The Great Expectations project (`gx/`): suites, validation definitions, checkpoints, Data Docs.

A GX 1.x File Data Context, laid out the way GX creates it:

    gx/great_expectations.yml        the pandas data source `crm` (one dataframe asset per
                                     table, batch definition `whole`), the stores, the Data
                                     Docs site `local_site`
    gx/expectations/<table>.json     one suite per table (leads, events, outcomes, mql_feedback)
    gx/validation_definitions/<table>.json   suite x asset
    gx/checkpoints/<table>.json      one checkpoint per table, no actions

The suites are *generated* from `leadscore.data.validate.table_suite` (the single source of
truth) by `sync`, which creates what is missing and rewrites a suite only when its content
(type, kwargs, meta of each expectation; ids ignored) differs. The validate stage calls it
before it runs, so `gx/` always matches the code and `validate.max_null_share`;
`tests/data/test_gx_project.py` checks that the committed files are in sync.

Run-time values are suite parameters, so the files do not change from run to run:
`{"$PARAMETER": "now"}` is the reference time of the future-timestamp check.

Validation results are kept in memory (`InMemoryStoreBackend`): every validate run renders
them into the Data Docs site (`build_data_docs`), and nothing else under `gx/` changes when
the stage runs. Personal data never reaches GX: the suites name no PII column, and
`gx_frame` blanks PII columns (keeping their names for the column-set check).

By hand, as GX users know it:

    import great_expectations as gx
    context = gx.get_context(mode="file", project_root_dir=".")
    context.checkpoints.get("events").run(batch_parameters={"dataframe": df},
                                          expectation_parameters={"now": now})
    context.build_data_docs()
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.errors import ConfigError
from leadscore.schema import PII_COLUMNS

DATASOURCE = "crm"
BATCH = "whole"
SITE = "local_site"
# What GX keeps of each result: the row indices of unexpected rows (for the quarantine), a
# short sample of unexpected values for the Data Docs (keys, codes, timestamps: never PII,
# see `gx_frame`), and no query string repeating every index.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "partial_unexpected_count": 20,
    "return_unexpected_index_query": False,
}


def _gx() -> Any:
    from leadscore.data.gx_import import import_gx  # slow to import: only when a context is needed

    return import_gx()


def _site_config(base_directory: str) -> dict[str, Any]:
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": base_directory},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }


def _configure(context: Any, site_dir: str | None) -> bool:
    """Quiet, local, in-memory results; the Data Docs site at `site_dir` (relative to the
    context root, or absolute). Returns whether the configuration changed."""
    v = context.variables
    stores = dict(v.stores or {})
    results = {"class_name": "ValidationResultsStore",
               "store_backend": {"class_name": "InMemoryStoreBackend"}}
    wanted: dict[str, Any] = {
        "analytics_enabled": False,
        "progress_bars": {"globally": False, "metric_calculations": False},  # GX reads it as a dict
        "stores": {**stores, v.validation_results_store_name: results},
    }
    if site_dir is not None:
        wanted["data_docs_sites"] = {SITE: _site_config(site_dir)}
    changed = False
    for key, value in wanted.items():
        if getattr(v, key) != value:
            setattr(v, key, value)
            changed = True
    return changed


def ephemeral_context(data_docs_dir: str | Path | None = None) -> Any:
    """An in-memory context (no `gx/` folder): the library default, e.g. for `leadscore retrain`."""
    context = _gx().get_context(mode="ephemeral")
    _configure(context, None if data_docs_dir is None else str(Path(data_docs_dir).resolve()))
    return context


def file_context(gx_dir: str | Path, data_docs_dir: str | Path | None = None) -> Any:
    """The file-backed project at `gx_dir` (created when missing). `data_docs_dir` becomes
    the site's folder, stored relative to `gx_dir` (so `context.build_data_docs()` by hand
    writes where the stage does)."""
    gx_dir = Path(gx_dir)
    if gx_dir.name != "gx":
        raise ConfigError(f"{gx_dir}: the GX project folder must be named 'gx' (GX's layout)")
    context = _gx().get_context(mode="file", project_root_dir=str(gx_dir.parent))
    site = None if data_docs_dir is None else os.path.relpath(Path(data_docs_dir), gx_dir) + "/"
    if _configure(context, site):  # saved, then reopened: stores are built when it opens
        context.variables.save()
        context = _gx().get_context(mode="file", project_root_dir=str(gx_dir.parent))
    return context


def _content(suite: Any) -> list[str]:
    """A suite's expectations without their ids, as comparable JSON strings."""
    out = []
    for exp in suite.expectations:
        cfg = exp.configuration.to_json_dict()
        cfg.pop("id", None)
        out.append(json.dumps(cfg, sort_keys=True, default=str))
    return out


def _names(items: Any) -> set[str]:
    return {i.name for i in items}


def sync(context: Any, suites: Sequence[Any]) -> list[str]:
    """Create or update, for each suite, its asset, suite, validation definition and
    checkpoint (all named like the table; the checkpoint runs that one validation definition
    with `RESULT_FORMAT` and no actions). Returns the names of suites written."""
    gx = _gx()
    try:
        source = context.data_sources.get(DATASOURCE)
    except KeyError:  # GX raises KeyError for an unknown data source
        source = context.data_sources.add_pandas(DATASOURCE)
    stored = _names(context.suites.all())
    definitions = _names(context.validation_definitions.all())
    checkpoints = _names(context.checkpoints.all())
    written = []
    for suite in suites:
        name = suite.name
        if name not in source.get_asset_names():
            source.add_dataframe_asset(name=name)
        asset = source.get_asset(name)
        if BATCH not in {b.name for b in asset.batch_definitions}:
            asset.add_batch_definition_whole_dataframe(BATCH)
        batch = asset.get_batch_definition(BATCH)
        if name not in stored:
            saved = context.suites.add(gx.ExpectationSuite(
                name=name, expectations=[e.copy() for e in suite.expectations], meta=suite.meta))
            written.append(name)
        else:
            saved = context.suites.get(name)
            if _content(saved) != _content(suite) or saved.meta != {**suite.meta, **_version(saved)}:
                saved.expectations = [exp.copy() for exp in suite.expectations]
                saved.meta = {**suite.meta, **_version(saved)}
                saved.save()
                written.append(name)
        if name not in definitions:
            context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch, suite=saved))
        current = context.checkpoints.get(name) if name in checkpoints else None
        if current is None or current.actions or current.result_format != RESULT_FORMAT or [
                v.name for v in current.validation_definitions] != [name]:
            context.checkpoints.add_or_update(gx.Checkpoint(
                name=name, validation_definitions=[context.validation_definitions.get(name)],
                actions=[], result_format=RESULT_FORMAT))
    return written


def _version(suite: Any) -> dict[str, Any]:
    key = "great_expectations_version"
    return {key: suite.meta[key]} if key in suite.meta else {}


def gx_frame(df: pd.DataFrame) -> pd.DataFrame:
    """`df` as GX may see it: PII columns keep their names (so the column-set check still
    rejects them) but lose their values."""
    pii = [c for c in PII_COLUMNS if c in df.columns]
    if not pii:
        return df
    return df.assign(**{c: pd.Series(None, index=df.index, dtype="object") for c in pii})


def run_checkpoint(context: Any, name: str, df: pd.DataFrame, parameters: Mapping[str, Any]) -> Any:
    """Run checkpoint `name` on `df` (one whole-dataframe batch); return its suite result."""
    result = context.checkpoints.get(name).run(
        batch_parameters={"dataframe": gx_frame(df)}, expectation_parameters=dict(parameters))
    (suite_result,) = result.run_results.values()
    return suite_result


def build_data_docs(context: Any) -> Path:
    """Render the suites and this run's results into the site's folder, replacing what an
    earlier run left there. Returns the path of its index.html."""
    site = context.variables.data_docs_sites[SITE]["store_backend"]["base_directory"]
    root = Path(site) if os.path.isabs(site) else Path(context.root_directory) / site
    root = Path(os.path.normpath(root))
    if root.exists() and any(root.iterdir()) and not (root / "index.html").exists():
        raise ConfigError(f"{root}: exists and is not a Data Docs site; refusing to replace it")
    if root.exists():
        shutil.rmtree(root)
    context.build_data_docs(site_names=[SITE])
    return root / "index.html"


def data_docs_link(report_path: str | Path, data_docs_dir: str | Path) -> str:
    """The relative link from the HTML report at `report_path` to the Data Docs index,
    e.g. ("reports/report.html", "reports/data_docs") -> "data_docs/index.html"."""
    index = Path(data_docs_dir) / "index.html"
    return Path(os.path.relpath(index, Path(report_path).parent)).as_posix()
