"""Judging models: metrics, plots, reports."""
