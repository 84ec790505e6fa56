# %% [markdown]
# # 01 · Explore the point-in-time training table
# A review notebook in percent format (open it in VS Code or Jupyter with jupytext, or run
# it as a script: `python notebooks/01-explore-training-table.py`). It imports leadscore
# and reads the pipeline's outputs; it computes nothing the pipeline should own.

# %%
from pathlib import Path

import pandas as pd

from leadscore.features.catalog import load_catalog

root = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent
table = pd.read_parquet(root / "data/processed/train.parquet")
catalog = load_catalog(root / "data/processed/feature_catalog.json")

# %% [markdown]
# ## Base rate per scoring date
# Seasonality in the synthetic CRM shows up here; a drifting base rate is what the
# out-of-time split and calibration have to live with.

# %%
per_date = table.groupby("as_of")["label"].agg(rows="size", positives="sum", base_rate="mean")
print(per_date.to_string())

# %% [markdown]
# ## Conversion by a few plain-language drivers

# %%
for name in ("seniority", "source", "company_size_band"):
    rates = table.groupby(name)["label"].agg(rows="size", rate="mean").sort_values("rate", ascending=False)
    print(f"\n{catalog[name].label}\n{rates.to_string()}")

# %%
views = table["pricing_page_view_30d"].clip(upper=5)
print(f"\n{catalog['pricing_page_view_30d'].label} (5 = 5 or more)")
print(table.groupby(views)["label"].agg(rows="size", rate="mean").to_string())
