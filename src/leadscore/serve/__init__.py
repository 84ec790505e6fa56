"""Serving: the one scorer, the MLflow wrapper, export, the batch job, one-lead scoring."""
