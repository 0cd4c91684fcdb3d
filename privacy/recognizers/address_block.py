"""Postal address blocks: the city, region, country and postcode lines around a street line.

A letter or signature puts an address on consecutive short lines::

    Jane Roe
    Acme Ltd
    41086 Kiannonkatu 98
    Suite 464
    OULU
    Finland 80896

A street (``street_address`` patterns) anchors the block. When the street ends
its line, the block grows down over up to four following address-like lines
(short, no label, no sentence; one blank line allowed between them); when it
starts its line, up over at most two directly adjacent addressee lines (name,
company). A street inside a sentence stays as it is. The whole block is one
``STREET_ADDRESS`` span.
"""

from __future__ import annotations

import regex
from presidio_analyzer import EntityRecognizer, RecognizerResult

from privacy.recognizers import street_address

MAX_LINES_BELOW = 4
MAX_LINES_ABOVE = 2
MAX_LINE_CHARS = 60
MAX_LINE_WORDS = 6
# A line that is a label, a sentence or a list item is not part of an address.
NOT_ADDRESS = regex.compile(r"[:=]|[.!?]\s+\S|[!?]\s*$|^\s*[-*•]|https?://|@")


def _address_like(line: str, lowercase_block: bool) -> bool:
    words = line.split()
    if not words or len(line) > MAX_LINE_CHARS or len(words) > MAX_LINE_WORDS or NOT_ADDRESS.search(line):
        return False
    if lowercase_block:
        return True
    # Place names, postcodes and country names: capitalised or numeric words.
    marked = sum(1 for w in words if w[0].isupper() or w[0].isdigit() or not w[0].isalpha())
    return marked * 2 >= len(words)


class AddressBlockRecognizer(EntityRecognizer):
    """Grows street-line matches into the whole postal address block."""

    def __init__(self) -> None:
        super().__init__(
            supported_entities=["STREET_ADDRESS"],
            name="LookoutAddressBlockRecognizer",
            supported_language="en",
        )
        anchor = street_address.build()
        self._anchors = [regex.compile(p.regex, anchor.global_regex_flags) for p in anchor.patterns]

    def load(self) -> None:  # noqa: D102 (nothing to load)
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        """Address blocks anchored on a street line; nothing for an address alone on its line."""
        if entities and "STREET_ADDRESS" not in entities:
            return []
        lines = _lines(text)
        matches = sorted({(m.start(), m.end()) for rx in self._anchors for m in rx.finditer(text)})
        results, covered_to = [], -1
        for m_start, m_end in matches:
            if m_start < covered_to:
                continue
            index = _line_index(lines, m_start)
            line_start, line_end, body = lines[index]
            start, end = m_start, m_end
            lowercase = body.strip() == body.strip().lower()
            # Grow down only when the street ends its line (or only a place follows it).
            tail = text[m_end:line_end]
            if not tail.strip(" \t,") or _address_like(tail, lowercase):
                end = max(end, line_start + len(body.rstrip()))
                blank, probe = 0, index + 1
                while probe < len(lines) and probe - index <= MAX_LINES_BELOW + blank:
                    below = lines[probe][2]
                    if not below.strip():
                        blank += 1
                        if blank > 1:
                            break
                    elif _address_like(below, lowercase):
                        end = lines[probe][0] + len(below.rstrip())
                    else:
                        break
                    probe += 1
            # Grow up over addressee lines only when the street starts its line.
            if not text[line_start:m_start].strip():
                probe = index - 1
                while (
                    probe >= 0
                    and index - probe <= MAX_LINES_ABOVE
                    and lines[probe][2].strip()
                    and _address_like(lines[probe][2], lowercase)
                ):
                    above = lines[probe]
                    start = above[0] + len(above[2]) - len(above[2].lstrip())
                    probe -= 1
            covered_to = end
            if (start, end) != (m_start, m_end) and text[start:end].count("\n"):
                results.append(RecognizerResult("STREET_ADDRESS", start, end, 0.5))
        return results


def _lines(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, body)`` of every line; ``???`` and similar bullets are kept in the body."""
    out, pos = [], 0
    for body in text.split("\n"):
        out.append((pos, pos + len(body), body))
        pos += len(body) + 1
    return out


def _line_index(lines: list[tuple[int, int, str]], offset: int) -> int:
    return next(i for i, (start, end, _) in enumerate(lines) if start <= offset <= end)


def build() -> AddressBlockRecognizer:
    """The recognizer."""
    return AddressBlockRecognizer()
