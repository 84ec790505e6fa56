"""Issue 12 item 8, as a property: `leadscore flat` on a broken mapping or a broken small CSV
(hypothesis draws one to three breakages: missing keys, wrong types, unknown keys, an empty
file, non-UTF-8 bytes, duplicate headers, a one-class or empty target, all-null columns,
garbage dates, random bytes, ...) ends in a clear error with a documented exit code (1 input,
2 configuration, 4 guard; never 5, never a traceback) and publishes nothing at --out."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.errors import EXIT_CONFIG, EXIT_GUARD, EXIT_INPUT
from tests.flat.exports import FAST_MODEL, base_frame, dates

N_ROWS = 60
NON_UTF8 = "@@not-utf-8@@"
FEATURES = ["Channel", "Page Visits", "Company Size"]

# Values that are wrong for their key whatever else the mapping says.
WRONG_VALUES: dict[str, list] = {
    "seed": [-1, "abc", [1], 2**40, 1.5],
    "max_levels": [1, "many", [3]],
    "split": [5, "half", {"test": 0.9}, {"test": 0.3, "calib": 0.3, "valid": 0.3}, {"train": 0.5}],
    "delimiter": [";;", "", 5],
    "encoding": ["utf-9", "hex", "rot13", "base64", "zlib", "utf-16", "utf-32", 42],
    "fit": [3, {"a": 1}, ["Nope"], ["Converted"]],
    "engagement": [["Channel", "Channel "], "Page Visits"],
    "types": [{"Channel": "text"}, {"Nope": "numeric"}, "numeric"],
    "positive": [[1], {"a": 1}, None, "maybe"],
    "screen": [{"on_flag": "ignore"}, {"max_auc": 2}, "yes", {"max_rows": 5}],
    "model": [{"n_trials": 0}, {"additive": "sometimes"}, [], {"min_positives": 0}],
    "time_order": ["cols", 1],
    "date_format": ["dd/mm", "%d.%m"],
    "max_bad_dates": [1.5, -0.1, "some"],
    "rules": [{"fit": {"Channel": {">>3": 5}}}, {"fit": {"Nope": {"a": 1}}}, {"fit_bands": {"A": 1}},
              "none", {"engagement": {"Page Visits": {"5..1": 3}}}],
    "date_parts": ["sometimes", [1]],
    "not_pii": [5, ["Nope"]],
    "id": ["Nope", 5, "Channel"],
    "created_at": ["Nope", "Channel", 7],
    "file": ["nope.csv", 5, ".", ""],
    "allow": [5, ["Nope"]],
    "labels": [5, ["x"]],
    "missing_values": [5, {"a": 1}],
    "drop": [["Converted"], ["Nope"], "Channel", ["Created"]],
    "target": ["Nope", 3, "Channel"],
}
REQUIRED = ("file", "target", "positive")


def _base_mapping(created: bool) -> dict:
    raw = {"file": "export.csv", "target": "Converted", "positive": "yes", "model": dict(FAST_MODEL),
           "screen": {"on_flag": "drop"}}
    if created:
        raw["created_at"] = "Created"
    return raw


@st.composite
def broken_inputs(draw):
    """(mapping file bytes, export file bytes) with at least one fatal breakage, and the
    breakages drawn (for the failure message)."""
    created = draw(st.booleans())
    df = base_frame(N_ROWS, seed=draw(st.integers(0, 3)))
    df["Created"] = dates(N_ROWS).dt.strftime("%Y-%m-%d").to_numpy()
    raw = _base_mapping(created)
    mapping_bytes: bytes | None = None
    csv_bytes: bytes | None = None
    kinds = draw(st.lists(st.sampled_from(
        ["missing_key", "wrong_type", "unknown_key", "not_a_mapping", "bad_yaml", "mapping_bytes",
         "empty_file", "header_only", "non_utf8", "duplicate_headers", "one_class", "empty_target",
         "three_classes", "all_null_features", "garbage_dates", "random_bytes", "few_rows"]),
        min_size=1, max_size=3, unique=True))
    noise = draw(st.booleans())
    if noise:  # not fatal on its own: an all-null extra column and a stray header
        df["Empty Column"] = ""
        df[""] = "x"
    header_dup = None
    for kind in kinds:
        if kind == "missing_key":
            for key in draw(st.lists(st.sampled_from(REQUIRED), min_size=1, unique=True)):
                raw.pop(key, None)
        elif kind == "wrong_type":
            key = draw(st.sampled_from(sorted(WRONG_VALUES)))
            raw[key] = draw(st.sampled_from(WRONG_VALUES[key]))
        elif kind == "unknown_key":
            raw[draw(st.sampled_from(["targets", "Positive", "colums", "split_test", "screen_on_flag"]))] = 1
        elif kind == "not_a_mapping":
            mapping_bytes = yaml.safe_dump(draw(st.sampled_from([[1, 2], "file.csv", 3, None]))).encode()
        elif kind == "bad_yaml":
            mapping_bytes = draw(st.sampled_from([b"file: [unclosed\n", b"a: b: c\n", b"\t- x: y\n  z\n",
                                                  b"target: Converted\n  positive: yes\n"]))
        elif kind == "mapping_bytes":
            mapping_bytes = b"file: export.csv\ntarget: \xff\xfe\x81\n"
        elif kind == "empty_file":
            csv_bytes = b""
        elif kind == "header_only":
            csv_bytes = (",".join(df.columns) + "\n").encode()
        elif kind == "non_utf8":
            row = draw(st.integers(0, len(df) - 1))
            df.loc[row, "Channel"] = NON_UTF8  # written below as the raw bytes ff fe
        elif kind == "duplicate_headers":
            header_dup = draw(st.sampled_from(FEATURES))
        elif kind == "one_class":
            df["Converted"] = draw(st.sampled_from(["yes", "no"]))
        elif kind == "empty_target":
            df["Converted"] = draw(st.sampled_from(["", "NA", "null"]))
        elif kind == "three_classes":
            df["Converted"] = np.resize(["yes", "no", "maybe"], len(df))
        elif kind == "all_null_features":  # with a created date, its parts alone would train
            raw.setdefault("date_parts", False)
            for c in FEATURES:
                df[c] = draw(st.sampled_from(["", "n/a", "-"]))
        elif kind == "garbage_dates":
            raw["created_at"] = "Created"
            raw.pop("time_order", None)
            garbage = draw(st.lists(st.sampled_from(["soon", "31/02/2x", "yesterday", "??", "2024-13-45"]),
                                    min_size=len(df), max_size=len(df)))
            df["Created"] = garbage
        elif kind == "random_bytes":
            csv_bytes = draw(st.binary(max_size=200))
        elif kind == "few_rows":
            df = df.head(draw(st.integers(1, 4)))
    if csv_bytes is None:
        text = df.to_csv(index=False)
        if header_dup:
            other = next(c for c in FEATURES if c != header_dup)
            text = text.replace(other, header_dup, 1)
        csv_bytes = text.encode().replace(NON_UTF8.encode(), b"\xff\xfe")
    if mapping_bytes is None:
        mapping_bytes = yaml.safe_dump(raw, sort_keys=False).encode()
    return mapping_bytes, csv_bytes, kinds


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken_inputs())
def test_broken_mappings_and_files_end_in_a_documented_exit_code_and_publish_nothing(case):
    mapping_bytes, csv_bytes, kinds = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        (root / "in" / "mapping.yaml").write_bytes(mapping_bytes)
        (root / "in" / "export.csv").write_bytes(csv_bytes)
        out = root / "runs" / "out"
        out.parent.mkdir()
        result = CliRunner().invoke(app, ["flat", "--mapping", str(root / "in" / "mapping.yaml"),
                                          "--out", str(out)])
        where = f"{kinds}: exit {result.exit_code}\n{result.output}"
        assert "Traceback" not in result.output, where
        assert isinstance(result.exception, SystemExit), where
        assert result.exit_code in (EXIT_INPUT, EXIT_CONFIG, EXIT_GUARD), where
        assert not out.exists(), where  # nothing published
        assert list(out.parent.iterdir()) == [], where  # no staging folder left behind
