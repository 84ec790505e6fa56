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
# # 01 · Explore the CRM
# The lead base behind the scores: the leads, the funnel (lead → MQL → SQL → opportunity →
# won), conversion by source and segment, the event mix over time and the label window.
#
# It reads the outputs of a pipeline run (`make run`) in the project folder
# `$LEADSCORE_PROJECT` (default: this repository): the **ingested, PII-free** CRM
# `data/interim/validated.duckdb` and the training table. Every figure comes from
# `leadscore.review`; cells only call it and draw. No e-mail or name is ever read.

# %%
import duckdb
import pandas as pd
from IPython.display import display

from leadscore.review import crm
from leadscore.review.project import Project

pd.set_option("display.precision", 3)
project = Project.find()
print(f"not available (run `make run`): {project.missing() or 'nothing'}")
params = project.params
target = params.features.target_stage
con = duckdb.connect(str(project.crm), read_only=True)
leads = crm.lead_stages(con)
print(f"project: {project.root.name}; {len(leads):,} leads created "
      f"{leads['created_at'].min():%Y-%m-%d} to {leads['created_at'].max():%Y-%m-%d}; "
      f"target stage: {target}")

# %% [markdown]
# ## The lead base
# New leads per month by source: the channel mix the model learns from.

# %%
monthly = crm.new_leads(leads, "source")
monthly.plot.area(figsize=(9, 4), title="New leads per month, by source", linewidth=0)
display(monthly.tail(6))

# %% [markdown]
# ## The funnel
# A lead counts at a stage when it reached that stage or a later one (a won lead was an
# opportunity), as in the training labels.

# %%
stages = crm.funnel(leads)
stages["leads"].plot.barh(figsize=(7, 3), title="Leads reaching each stage").invert_yaxis()
display(stages)

# %% [markdown]
# ## Conversion by source and segment
# Share of leads that ever reached the target stage, per value; best first. A segment's
# share of all conversions says how much it matters, its rate how good it is.

# %%
for column in crm.SEGMENTS:
    table = crm.conversion_by(leads, column, target)
    print(f"\n{column} (reached {target})")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))

# %%
crm.conversion_by(leads, "source", target)["rate"].sort_values().plot.barh(
    figsize=(7, 4), title=f"Share of leads reaching {target}, by source")

# %% [markdown]
# ## The event mix over time
# Behaviour events per month, and each type's share of the month's events. A campaign or a
# tracking change shows up here before it shows up in the model's drift checks.

# %%
mix = crm.event_mix(con, "month")
mix.plot(figsize=(9, 4), title="Events per month, by type")
crm.event_mix(con, "month", shares=True).plot.area(figsize=(9, 4), linewidth=0,
                                                   title="Share of the month's events, by type")
display(mix.tail(3).T)

# %% [markdown]
# ## The label window
# A training row is a (lead, `as_of`) pair labelled 1 when the lead reaches the target stage
# within `features.horizon_days` after `as_of`. How much of the conversion does that window
# see, counted from the lead's creation?

# %%
horizon = params.features.horizon_days
print(f"label window: {horizon} days after as_of")
display(crm.days_to_stage(leads, target, within=tuple(sorted({30, 60, horizon, 180, 365}))))

# %% [markdown]
# Per scoring date: rows, positives and the base rate. A window that had not closed by the
# data cutoff is excluded, not labelled 0, so the last `as_of` is about one horizon before
# the cutoff.

# %%
cutoff = (project.outputs.features or {}).get("data_cutoff")
window = crm.label_window(project.training_table(), horizon, cutoff)
window["base_rate"].plot(figsize=(9, 3), marker="o", title="Base rate per as_of")
print(f"data cutoff: {cutoff}")
display(window)

# %%
con.close()
