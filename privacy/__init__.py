"""Privacy core: redaction, pseudonyms, and the release gate."""

import os

# tldextract (used by Presidio's URL and email recognizers) must never fetch
# public-suffix lists at run time.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
