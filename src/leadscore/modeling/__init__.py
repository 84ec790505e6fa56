"""Models and how they are measured: splits, the points-rule baseline, estimators, tuning,
calibration, the leakage guard, training and evaluation."""
