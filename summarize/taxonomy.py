"""Safety taxonomies loaded from YAML and validated at startup."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

TAXONOMY_DIR = Path(__file__).parent / "taxonomies"
DEFAULT_TAXONOMY = "ailuminate_v1"


class Category(BaseModel):
    """One safety category."""

    code: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    definition: str
    severity: Literal["low", "medium", "high", "critical"]
    maps_to: dict[str, list[str]] = Field(
        default_factory=dict, description="Equivalent codes in other taxonomies, by taxonomy name."
    )
    examples: list[str] = Field(
        default_factory=list, description="Short example requests in the category (for category matching)."
    )


class Taxonomy(BaseModel):
    """A named set of safety categories."""

    name: str
    title: str
    categories: list[Category] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> Taxonomy:
        codes = [c.code for c in self.categories]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"duplicate category codes: {dupes}")
        return self

    @property
    def codes(self) -> list[str]:
        """Category codes in file order."""
        return [c.code for c in self.categories]

    def severity_by_code(self) -> dict[str, str]:
        """Each category's severity by code."""
        return {c.code: c.severity for c in self.categories}

    def mapping_to(self, other: Taxonomy) -> dict[str, list[str]]:
        """This taxonomy's codes mapped to ``other``'s, from either file's ``maps_to``.

        Raises:
            TaxonomyError: A mapping names a code ``other`` does not have.
        """
        if other.name == self.name:
            return {code: [code] for code in self.codes}
        out: dict[str, set[str]] = {c: set() for c in self.codes}
        for category in self.categories:
            out[category.code].update(category.maps_to.get(other.name, []))
        for category in other.categories:
            for code in category.maps_to.get(self.name, []):
                if code in out:
                    out[code].add(category.code)
        unknown = sorted({c for codes in out.values() for c in codes} - set(other.codes))
        if unknown:
            raise TaxonomyError(f"mapping from {self.name} to {other.name} names unknown codes {unknown}")
        return {code: sorted(codes) for code, codes in out.items()}

    def prompt_block(self) -> str:
        """The categories as the facet prompt lists them."""
        return "\n".join(f"- {c.code}: {c.name}. {c.definition}" for c in self.categories)


class TaxonomyError(ValueError):
    """A taxonomy file is missing or invalid."""


def load_taxonomy(name_or_path: str = DEFAULT_TAXONOMY) -> Taxonomy:
    """Load a bundled taxonomy by name, or any YAML file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = TAXONOMY_DIR / f"{name_or_path}.yaml"
    return _load(str(path))


@lru_cache(maxsize=16)
def _load(path: str) -> Taxonomy:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise TaxonomyError(f"taxonomy file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"taxonomy file {path} is not valid YAML: {exc}") from None
    try:
        return Taxonomy.model_validate(data)
    except ValidationError as exc:
        raise TaxonomyError(f"taxonomy file {path} is invalid: {exc}") from None
