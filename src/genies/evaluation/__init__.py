"""Scoring any model and intervention: the metric library, per-shift tables (accuracy, El, DE,
calibration, intervals) and their GENIES means."""
