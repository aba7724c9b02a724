"""One redaction function for envelopes and every log field (ORCH-3326, ORCH-3330, ORCH-3331)."""

from __future__ import annotations

import json
import logging
import sys

import msgspec
import pytest

from llorch_contracts.api import ErrorKind
from llorch_http import ApiError, JsonLines, redact
from llorch_http._logging import RedactingFormatter

SECRET = "Zq9SECRETvalue7"


@pytest.mark.req("ORCH-3331", "ORCH-3326")
@pytest.mark.parametrize(
    "text",
    [
        f"https://user:{SECRET}@models.example/m.gguf",
        f"https://{SECRET}@models.example/m.gguf",
        f"hf:org/repo/m.gguf?access_token={SECRET}&revision=main",
        f"cannot fetch https://h.example/m.gguf?X-Amz-Signature={SECRET}&X-Amz-Credential={SECRET}: 403",
        f"s3://bucket/m.gguf?sig={SECRET}",
        f"api_key={SECRET}; password: {SECRET}",
        f'{{"secret": "{SECRET}"}}',
        f"Authorization: Bearer {SECRET}",
        f"HF token hf_{SECRET}abcdefghijklmnop in a message",
    ],
)
def test_credentials_in_urls_and_named_parameters_are_masked(text: str) -> None:
    assert SECRET in text
    assert SECRET not in redact(text)
    assert "****" in redact(text)


@pytest.mark.req("ORCH-3331")
def test_ordinary_text_keeps_its_values() -> None:
    for text in [
        "max_tokens: Expected `int`, got `str`",
        "tokens_in=12 tokens_out=3",
        "https://models.example/m.gguf?revision=main",
        "Accepted task into pool default: position 0",
    ]:
        assert redact(text) == text


@pytest.mark.req("ORCH-3326")
def test_the_configured_token_is_masked_verbatim() -> None:
    assert redact(f"odd place for {SECRET}", (SECRET,)) == "odd place for ****"


def _record(message: str, fields: dict[str, object], *, with_exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if with_exc:
        try:
            raise ValueError(f"boom at https://u:{SECRET}@h.example/x")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("llorch.narration", logging.INFO, __file__, 1, message, None, exc_info)
    record.fields = fields
    record.action = "admission"
    return record


@pytest.mark.req("ORCH-3330")
def test_json_lines_redact_every_field_nested_ones_included() -> None:
    fields: dict[str, object] = {
        "model_id": f"https://user:{SECRET}@h.example/m.gguf",
        "nested": {"refs": [f"hf:o/r?token={SECRET}"], "n": 3},
        "session_id": None,
    }
    line = JsonLines("orchestratord").format(
        _record(f"refused https://u:{SECRET}@h/x", fields, with_exc=True)
    )
    assert SECRET not in line
    parsed = json.loads(line)
    assert parsed["model_id"] == "https://****@h.example/m.gguf"
    assert parsed["nested"] == {"refs": ["hf:o/r?token=****"], "n": 3}
    assert "session_id" not in parsed
    assert "boom at https://****@h.example/x" in parsed["exception"]


@pytest.mark.req("ORCH-3330", "ORCH-3303")
def test_the_pretty_format_is_redacted_too() -> None:
    text = RedactingFormatter("%(message)s").format(_record(f"GET https://u:{SECRET}@h/x", {}))
    assert text == "GET https://****@h/x"


@pytest.mark.req("ORCH-3330")
def test_error_envelopes_carry_redacted_messages() -> None:
    error = ApiError(
        ErrorKind.INVALID_PARAMS, f"model_ref https://user:{SECRET}@h.example/m.gguf is not allowed"
    )
    body = msgspec.json.encode(error.envelope("corr-1")).decode()
    assert SECRET not in body
    assert SECRET not in str(error)
    assert "https://****@h.example/m.gguf" in body
