"""The marketing report: its inputs, charts and template."""
