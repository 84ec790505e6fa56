"""The MLflow pyfunc wrapper of the scorer: `ScorerModel`.

`leadscore.serve.model_code` (the models-from-code file that `mlflow.pyfunc.load_model`
executes) hands MLflow a `ScorerModel`; its `load_context` builds the
`leadscore.serve.scorer.Scorer` of whatever kind the artifacts hold (lightgbm, logistic or
rules; `Scorer.from_artifacts`) and `predict` is `Scorer.score`. This is the only serving
module that needs MLflow at import time.
"""

from __future__ import annotations

from mlflow.pyfunc import PythonModel

from leadscore.serve.scorer import Scorer


class ScorerModel(PythonModel):
    """MLflow pyfunc around `Scorer`: artifacts in, score contract out.

    `predict` takes the feature table (catalog columns; extra columns such as lead_id are
    ignored) and returns `leadscore.serve.scorer.OUTPUT_COLUMNS`, the same for every kind.
    MLflow enforces the input signature first.
    """

    def load_context(self, context) -> None:
        self.scorer = Scorer.from_artifacts(context.artifacts)

    def predict(self, context, model_input, params=None):  # no type hints: MLflow would infer from them
        if not hasattr(self, "scorer"):  # pragma: no cover - MLflow always calls load_context
            self.load_context(context)
        return self.scorer.score(model_input).reset_index(drop=True)
