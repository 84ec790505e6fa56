# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Explanations
# What drives the score: the global drivers, how the score moves with each top driver, a
# lead-by-lead walk through grades and reasons, and the points table learned from the model.
#
# It reads the outputs of a pipeline run (`make run`) in `$LEADSCORE_PROJECT` (default: this
# repository): `reports/drivers.json`, `plots/dependence_*.csv`, `reports/examples.json`, the
# exported scorer and `models/points.csv`. Leads are shown by their pseudonymous `lead_id`
# only.

# %%
import pandas as pd
from IPython.display import display

from leadscore.review import tables
from leadscore.review.project import Project
from leadscore.serve.scorer import Scorer

pd.set_option("display.precision", 3)
pd.set_option("display.max_colwidth", 120)
project = Project.find()
out = project.outputs
print(f"not available (run `make run`): {project.missing() or 'nothing'}")
print(f"project: {project.root.name}")

# %% [markdown]
# ## Global drivers
# Mean absolute contribution to the log-odds on the explain stage's slice, per field, with
# the direction in words.

# %%
drivers = tables.drivers_table(out.drivers or {})
if len(drivers):
    drivers.head(15).set_index("label")["mean_abs_contribution"].sort_values().plot.barh(
        figsize=(7, 5), title="Top drivers (mean |contribution|, log-odds)")
display(drivers)

# %% [markdown]
# ## Dependence plots
# How a driver's contribution moves with its value: binned means for numbers, one bar per
# level for categories.

# %%
for field, points in out.dependence.items():
    curve = tables.dependence_curve(points)
    if curve["numeric"].all():
        curve.plot(x="value", y="mean_contribution", marker="o", legend=False, figsize=(6, 3),
                   title=f"{field}: contribution by value")
    else:
        curve.plot.barh(x="value", y="mean_contribution", legend=False, figsize=(6, 3),
                        title=f"{field}: contribution by level")

# %% [markdown]
# ## A lead-by-lead walk through grades and reasons
# The explain stage's example leads, a few per grade, scored again by the model that ships
# (the champion, else the run's challenger): its probability, grade and reasons beside the
# rules' points and grade, and whether the lead converted within the label window.

# %%
scorer = Scorer.from_dir(project.shipped_scorer())
rows = tables.example_rows(project.training_table(), out.examples or {})
walk = tables.walk(scorer, rows)
print(f"scorer: {scorer.kind}, version {scorer.model_version}; {len(walk)} example leads")
display(walk.drop(columns=["reasons"]))

# %%
for _, lead in walk.groupby("grade", sort=True).head(1).iterrows():
    print(f"\n{lead['lead_id']} as of {lead['as_of']:%Y-%m-%d}: grade {lead['grade']} "
          f"(p = {lead['probability']:.3f}; rules {lead['rule_grade']}, {lead['rule_points']:.0f} points)")
    print(tables.reasons_table(lead["reasons"]).to_string(index=False))

# %% [markdown]
# The same leads as the explain stage chose them, reasons for and against in words.

# %%
display(tables.examples_table(out.examples or {}))

# %% [markdown]
# ## The learned points table
# The additive model turned into integer points per band or level (the `points` stage), to
# paste into a marketing-automation tool, measured out of time against its model and the
# hand-written rules.

# %%
points = out.points or {}
print(f"{points.get('points_per_doubling')} points double the odds; "
      f"MQL threshold: {(points.get('mql') or {}).get('threshold')} points")
display(tables.points_summary(points))

# %%
display(out.points_table if out.points_table is not None else "models/points.csv not found")
