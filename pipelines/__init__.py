"""Lookout pipelines."""
