"""Evaluation: emotion metrics, the speaker-leakage probe, protocols
(folds, sweeps) and their reports."""
