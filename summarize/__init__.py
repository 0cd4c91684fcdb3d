"""Lookout summarize."""
