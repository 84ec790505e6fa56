"""Data in: the synthetic CRM, ingest (PII removed), validation with Great Expectations."""
