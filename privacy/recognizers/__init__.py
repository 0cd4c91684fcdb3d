"""Project recognizers for what assistant logs leak and Presidio's predefined ones miss.

One recognizer per file; ``registry.yaml`` lists which are loaded. Each module
exposes ``build() -> presidio_analyzer.EntityRecognizer``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml
from presidio_analyzer import EntityRecognizer

REGISTRY = Path(__file__).with_name("registry.yaml")


def load_recognizers(registry: Path = REGISTRY) -> list[EntityRecognizer]:
    """Build every enabled recognizer named in the registry."""
    entries = yaml.safe_load(registry.read_text(encoding="utf-8"))["recognizers"]
    out = []
    for entry in entries:
        if not entry.get("enabled", True):
            continue
        module = importlib.import_module(f"privacy.recognizers.{entry['name']}")
        out.append(module.build())
    return out
