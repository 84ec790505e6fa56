"""Flat-export mode: a lead base already aggregated into one table, with a column mapping."""
