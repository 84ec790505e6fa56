"""The one scorer (`leadscore.serve.scorer.Scorer`): imports and scores without MLflow, and
its full output agrees with the score contract."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from leadscore.explain.grades import GradeCuts
from leadscore.serve.scorer import OUTPUT_COLUMNS, Scorer
from tests.serve.trained import AS_OF

pytestmark = pytest.mark.slow  # uses the trained scorer; `make test-fast` skips it

NO_MLFLOW = """
import json, sys
sys.modules["mlflow"] = None  # `import mlflow` (or any mlflow.*) now raises ImportError
import pandas as pd
from leadscore.serve.scorer import Scorer
out = Scorer.from_dir(sys.argv[1]).score(pd.read_parquet(sys.argv[2]))
assert [m for m in sys.modules if m.startswith("mlflow")] == ["mlflow"], "mlflow was imported"
out.drop(columns="reasons").to_parquet(sys.argv[3])
with open(sys.argv[4], "w") as f:
    json.dump(out["reasons"].tolist(), f)
"""


def _features(t) -> pd.DataFrame:
    return t.table[t.table["as_of"] == AS_OF].reset_index(drop=True)[t.catalog.names]


def test_scorer_imports_and_scores_without_mlflow(trained, tmp_path):  # noqa: F811
    X = _features(trained)
    X.to_parquet(tmp_path / "X.parquet")
    artifacts = trained.scorer / "artifacts"
    run = subprocess.run([sys.executable, "-c", NO_MLFLOW, str(artifacts), str(tmp_path / "X.parquet"),
                          str(tmp_path / "out.parquet"), str(tmp_path / "reasons.json")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    got = pd.read_parquet(tmp_path / "out.parquet")
    want = Scorer.from_dir(artifacts).score(X)
    assert len(got) == len(X) > 100
    pd.testing.assert_frame_equal(got, want.drop(columns="reasons"), check_dtype=False)
    assert json.loads((tmp_path / "reasons.json").read_text()) == want["reasons"].tolist()


def test_explain_gives_the_contract_plus_the_scores_behind_the_grade(trained):  # noqa: F811
    scorer = Scorer.from_dir(trained.scorer / "artifacts")
    X = _features(trained)
    full, why = scorer.explain(X)
    contract = scorer.score(X)
    assert list(contract.columns) == list(OUTPUT_COLUMNS)
    pd.testing.assert_frame_equal(full[list(OUTPUT_COLUMNS[:-1])], contract[list(OUTPUT_COLUMNS[:-1])])
    assert why.to_lists() == contract["reasons"].tolist()
    assert (full["grade"] == full["fit_grade"] + full["engagement_grade"]).all()
    np.testing.assert_allclose(full["log_odds"], scorer.model.decision_function(X), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(full["fit_grade"], scorer.cuts.letter(full["fit_score"].to_numpy()))
    np.testing.assert_array_equal(full["engagement_grade"],
                                  scorer.cuts.digit(full["engagement_score"].to_numpy()))
    assert scorer.explain(X.head(5), reasons=False)[1] is None


def test_groups_come_from_the_grading_record_else_the_catalog(trained):  # noqa: F811
    scorer = Scorer.from_dir(trained.scorer / "artifacts")
    assert scorer.groups["fit"] == [n for n in trained.catalog.group("fit") if n in scorer.feature_names]
    cuts = GradeCuts(fit_cuts=(1.0, 0.0, -1.0), engagement_cuts=(1.0, 0.0, -1.0),
                     fit_features=("seniority",), engagement_features=("pricing_page_view_30d",))
    narrow = Scorer(scorer.model, scorer.calibrator, cuts, scorer.catalog)
    assert narrow.groups == {"fit": ["seniority"], "engagement": ["pricing_page_view_30d"]}
    full, _ = narrow.explain(_features(trained).head(50), reasons=False)
    assert full["rule_points"].isna().all() and full["rule_grade"].isna().all()  # no rules given
