"""Lookout reporting."""
