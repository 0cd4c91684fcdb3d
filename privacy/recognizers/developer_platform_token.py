"""Tokens of developer platforms, from each provider's documented prefix and length.

Hugging Face ``hf_``, GitLab ``glpat-``, npm ``npm_``, PyPI ``pypi-AgEIcHlwaS5vcmc``,
SendGrid ``SG.x.y``, Twilio API key SIDs ``SK`` + 32 hex, DigitalOcean ``dop_v1_``,
Shopify ``shpat_``/``shpss_``, Atlassian ``ATATT3``, Databricks ``dapi`` + 32 hex.
"""

from privacy.recognizers._patterns import pattern_recognizer


def build():
    """The recognizer."""
    return pattern_recognizer(
        "API_KEY",
        [
            ("huggingface", r"\bhf_[A-Za-z0-9]{34,}\b", 0.9),
            ("gitlab_pat", r"\bglpat-[0-9A-Za-z_\-]{20,}\b", 0.9),
            ("npm", r"\bnpm_[A-Za-z0-9]{36}\b", 0.9),
            ("pypi", r"\bpypi-AgEIcHlwaS5vcmc[0-9A-Za-z_\-]{50,}", 0.95),
            ("sendgrid", r"\bSG\.[0-9A-Za-z_\-]{22}\.[0-9A-Za-z_\-]{43}\b", 0.95),
            ("twilio_api_key", r"\bSK[0-9a-f]{32}\b", 0.8),
            ("digitalocean", r"\bdo[opr]_v1_[a-f0-9]{64}\b", 0.95),
            ("shopify", r"\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}\b", 0.95),
            ("atlassian", r"\bATATT3[A-Za-z0-9_\-=]{100,}", 0.9),
            ("databricks", r"\bdapi[a-f0-9]{32}(?:-\d)?\b", 0.9),
        ],
        name="DeveloperPlatformToken",
    )
