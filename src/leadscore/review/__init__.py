"""Reviewing a pipeline run: the figures the notebooks in `notebooks/` show, as small tested
functions (the notebooks only call them and draw). Nothing here writes a file.

- `project`: where the outputs of a run live (`LEADSCORE_PROJECT`, else the repository).
- `crm`: the lead base read from the ingested CRM: funnel, conversion by segment, event mix,
  time to convert and the label window.
- `tables`: the stages' JSON outputs (evaluate, grades, backtest, gate, drivers, examples)
  as frames.

Not a dependency of any DVC stage: editing it reruns nothing.
"""
