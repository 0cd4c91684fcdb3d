"""Lookout assets."""
