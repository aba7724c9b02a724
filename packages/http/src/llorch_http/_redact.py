"""The one redaction function for error messages and log lines (ORCH-3326, ORCH-3330, ORCH-3331).

It works on free text, because secrets reach us inside messages ("cannot fetch
https://u:p@host/m.gguf"), not only as whole URL values. It over-masks rather than
under-masks: a harmless `monkey=1` losing its value costs nothing, a leaked token does.
"""

from __future__ import annotations

import re

MASK = "****"
# `scheme://user[:pass]@` — the user-info of any URL, wherever it sits in the text (ORCH-3331).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@\"'<>]*@")
# `name=value` or `name: value` where the name smells of a credential; covers query strings
# (`?X-Amz-Signature=…&sig=…`), form bodies and config-like text (ORCH-3331).
# The name must END in the credential word, so `max_tokens: Expected int` keeps its value.
_NAMED = re.compile(
    r"(?i)\b([\w.-]*(?:token|key|secret|passw(?:or)?d?|pwd|sig|signature|credentials?)\"?\s*[=:]\s*\"?)"
    r"[^\s\"'&;,)}\]]+"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask URL user-info, credential-named parameters, bearer values, HF tokens and `secrets` verbatim."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = _USERINFO.sub(rf"\1{MASK}@", text)
    text = _BEARER.sub(rf"\1{MASK}", text)
    text = _NAMED.sub(rf"\1{MASK}", text)
    return _HF_TOKEN.sub(MASK, text)


def redact_value(value: object, secrets: tuple[str, ...] = ()) -> object:
    """`redact` applied to every string inside a log field value (dicts and lists included)."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v, secrets) for v in value]
    return value
