"""Lookout clustering."""
