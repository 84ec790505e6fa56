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
# # 02 · Model review
# The points rules against the model on the out-of-time test slice: discrimination,
# calibration, gains, slices and grades; then the rolling-origin backtest, the promotion
# gate and champion against challenger.
#
# It reads the outputs of a pipeline run (`make run`) in `$LEADSCORE_PROJECT` (default: this
# repository): the stages' records (`reports/*.json`, `metrics/*.json`) and `plots/*.csv`.
# Every figure was computed by a stage; `leadscore.review.tables` only puts it in frames.

# %%
import pandas as pd
from IPython.display import display

from leadscore.review import tables
from leadscore.review.project import Project

pd.set_option("display.precision", 3)
pd.set_option("display.max_colwidth", 200)
project = Project.find()
out = project.outputs
evaluate = out.evaluate or {}
print(f"not available (run `make run`): {project.missing() or 'nothing'}")
print(f"project: {project.root.name}")

# %% [markdown]
# ## Rules against the model, out of time
# ROC-AUC with its lead-level bootstrap 95% interval, PR-AUC, log loss, Brier, ECE, and
# precision / recall at sales capacity.

# %%
metrics = tables.metrics_table(evaluate)
ship = evaluate.get("champion") or {}
print(f"ships: {ship.get('name')} (chosen on {ship.get('chosen_on')}): {ship.get('why')}")
print(f"LightGBM - rules ROC-AUC: {evaluate.get('auc_diff', float('nan')):+.3f}, "
      f"95% interval {evaluate.get('auc_diff_ci')}")
display(metrics)

# %%
if len(metrics):
    metrics["roc_auc"].plot.barh(figsize=(6, 2.5), xlim=(0.5, 1), title="Out-of-time ROC-AUC",
                                 xerr=[metrics["roc_auc"] - metrics["roc_auc_low"],
                                       metrics["roc_auc_high"] - metrics["roc_auc"]])

# %% [markdown]
# ## Calibration
# Observed conversion against the mean predicted probability, in equal-count bins of the
# test slice. On the diagonal is calibrated.

# %%
ax = None
for model, curve in out.reliability.items():
    ax = curve.plot(x="mean_predicted", y="observed", marker="o", label=model, ax=ax,
                    figsize=(5, 5), title="Reliability, out-of-time test slice")
if ax is not None:
    top = max(c[["mean_predicted", "observed"]].max().max() for c in out.reliability.values())
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="calibrated")
    ax.legend()
display(metrics[["ece", "brier", "log_loss"]])

# %% [markdown]
# ## Gains
# Share of all conversions caught when sales works the top share of leads by each score.

# %%
gains = out.gains
if gains is not None:
    curves = [c for c in gains.columns if c.startswith("cum_gain_")]
    ax = gains.plot(x="share_of_leads", y=curves, marker="o", figsize=(6, 5),
                    title="Cumulative gains, out-of-time test slice")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
display(gains)

# %% [markdown]
# ## Slices
# ROC-AUC per segment, model against rules (segments with too few conversions are left out
# by the evaluate stage).

# %%
for column in tables.segment_columns(evaluate):
    print(f"\n{column}")
    print(tables.segments_table(evaluate, column).to_string(float_format=lambda v: f"{v:.3f}"))

# %% [markdown]
# ## Grades on the test slice
# Observed conversion per grade: it should fall from A to D within each digit, and from 1 to
# 4 within each letter. Breaks are listed with their significance.

# %%
grades = out.grades or {}
for model in grades:
    print(f"\n{model}: observed conversion by grade")
    print(tables.grade_matrix(grades, model).to_string(float_format=lambda v: f"{v:.3f}"))
    breaks = tables.grade_breaks(grades, model)
    print("breaks:" if len(breaks) else "no breaks")
    if len(breaks):
        print(breaks.to_string())

# %% [markdown]
# ## The backtest
# The same training procedure, fold after fold (rolling origin): out-of-time ROC-AUC per
# fold and model, and the mean with its 95% interval.

# %%
backtest = out.backtest or {}
folds = tables.backtest_table(backtest)
if len(folds):
    models = [c for c in folds.columns if c not in ("cutoff", "test_rows", "test_positives")]
    folds.plot(x="cutoff", y=models, marker="o", figsize=(8, 4), title="Backtest ROC-AUC per fold")
display(folds)

# %%
display(tables.backtest_summary(backtest))

# %% [markdown]
# ## The gate: champion against challenger
# On the most recent mature window, every check must pass before the challenger becomes
# champion. With no champion yet, the comparisons have nothing to compare with.

# %%
gate = out.gate or {}
print(f"decision: {gate.get('decision')}; passed: {gate.get('passed')}; "
      f"promoted: {gate.get('promoted')}; window: {gate.get('window')}")
display(tables.gate_sides(gate))

# %%
display(tables.gate_table(gate))

# %% [markdown]
# What changed for marketing between the two (the gate stage's `reports/changes.json`).

# %%
changes = out.changes or {}
if changes.get("available"):
    print(pd.DataFrame(changes.get("grade_mix", [])).to_string())
else:
    print(f"no comparison: {changes.get('reason', 'reports/changes.json not found')}")
