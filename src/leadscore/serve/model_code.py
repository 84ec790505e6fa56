"""The models-from-code entry of the exported scorer.

`mlflow.pyfunc.load_model` executes this file (a copy of it is stored in the MLflow model)
and takes the object passed to `mlflow.models.set_model`. Nothing else imports it. The
logic lives in `leadscore.serve.pyfunc` (the wrapper) and `leadscore.serve.scorer` (the
scorer), so the serving environment needs the `leadscore` package installed next to MLflow.
"""

import mlflow

from leadscore.serve.pyfunc import ScorerModel

mlflow.models.set_model(ScorerModel())
