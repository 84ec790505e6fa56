"""Monitoring between retrains: the score history, drift (PSI) against the training
reference and across runs, null-rate, volume and freshness checks (`leadscore monitor`)."""
