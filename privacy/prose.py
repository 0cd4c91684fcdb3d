"""A cheap pre-check that keeps NER off source code.

NER on code is slow (code is long and token-dense) and finds little: names in
code live in comments and string literals. :func:`prose_view` returns a copy
of a text of the same length in which code is blanked out except its comments
and string literals, so NER offsets still point into the original text. Pattern
recognizers (keys, tokens, passwords) always run on the original text.

Code is either a fenced Markdown block, or a whole message that looks like code
line by line (most non-blank lines end or start like code, and none reads like
a sentence).
"""

from __future__ import annotations

import re

FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
# Comments and string literals: the parts of code where people write names.
CODE_PROSE = re.compile(
    r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|/\*[\s\S]*?\*/|(?<![:/])//[^\n]*|#[^\n]*|--[^\n]*'
    r'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`\n]*`'
)
CODE_LINE = re.compile(
    r"(^\s*(def |class |import |from \S+ import|return\b|if\b.*:$|for\b.*:$|while\b|elif\b|else\b|try:|except\b|"
    r"#include|#!|function\b|const |let |var |public |private |static |package |func |fn |use |@\w+|\}|\)|\]))|([;{}(\[,:=]\s*$)|(^\s*[\w.\[\]]+\s*[+\-*/]?=\s*\S)|(^\s*\w+(\.\w+)*\(.*\)\s*;?$)",
    re.IGNORECASE,
)
SQL_LINE = re.compile(
    r"^\s*(SELECT|FROM|WHERE|AND|OR|JOIN|LEFT JOIN|INNER JOIN|GROUP BY|ORDER BY|HAVING|LIMIT|INSERT|UPDATE|DELETE|"
    r"CREATE|ALTER|VALUES|SET|WITH)\b"
)
SENTENCE = re.compile(r"^\s*[A-Z][^=;{}<>()\[\]]*\b\w+ \w+ \w+ \w+\b[^=;{}<>]*[.?!]\s*$")
MIN_CODE_LINES = 3
COMMENT_STARTS = ("#", "//", "--", "/*", "*")
CODE_LINE_SHARE = 0.8


def looks_like_code(text: str) -> bool:
    """Whether a whole unfenced text is source code (conservative: prose says no)."""
    # Comment lines say nothing either way (a Markdown heading also starts with "#").
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(COMMENT_STARTS)
    ]
    if len(lines) < MIN_CODE_LINES or any(SENTENCE.match(line) for line in lines):
        return False
    code = sum(1 for line in lines if CODE_LINE.search(line) or SQL_LINE.match(line))
    return code >= CODE_LINE_SHARE * len(lines)


def _blank(text: str) -> str:
    """``text`` with every character except newlines replaced by a space."""
    return re.sub(r"[^\n]", " ", text)


def _keep_comments_and_strings(code: str) -> str:
    out, last = [], 0
    for match in CODE_PROSE.finditer(code):
        out.append(_blank(code[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_blank(code[last:]))
    return "".join(out)


def prose_view(text: str) -> str:
    """The text NER should see: same length, code blanked except comments and strings."""
    if looks_like_code(text):
        return _keep_comments_and_strings(text)
    out, last = [], 0
    for match in FENCE.finditer(text):
        start, end = match.span(2)
        out.append(text[last:start])
        out.append(_keep_comments_and_strings(text[start:end]))
        last = end
    out.append(text[last:])
    view = "".join(out)
    assert len(view) == len(text)
    return view


def code_share(text: str, view: str) -> float:
    """Share of the text's non-blank characters that NER does not need to read."""
    total = sum(1 for c in text if not c.isspace())
    if not total:
        return 0.0
    kept = sum(1 for c in view if not c.isspace())
    return 1 - kept / total
