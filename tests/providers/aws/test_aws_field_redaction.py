"""Redaction by field name, for AWS-generated secrets logged before the code can register them."""

from __future__ import annotations

import pytest

from finops_pipeline.security.redaction import MASK, RedactingFilter


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            "b'<Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId>"
            "<SecretAccessKey>abc/def+ghi</SecretAccessKey>"
            "<SessionToken>FQoGZXIvYXdz==</SessionToken></Credentials>'",
            "ASIAEXAMPLE",
        ),
        ("{'SecretAccessKey': 'abc/def+ghi', 'AccessKeyId': 'ASIAEXAMPLE'}", "ASIAEXAMPLE"),
        ('{"SessionToken": "FQoGZXIvYXdz==", "Expiration": "2026"}', "2026"),
        ("headers={'X-Amz-Security-Token': b'FQoGZXIvYXdz=='}", "headers"),
        ("aws_secret_access_key='abc/def+ghi' region=us-east-1", "us-east-1"),
    ],
)
def test_aws_secret_fields_are_masked_by_name(text: str, kept: str) -> None:
    redacted = RedactingFilter().redact(text)
    assert "abc/def+ghi" not in redacted and "FQoGZXIvYXdz==" not in redacted
    assert MASK in redacted and kept in redacted


def test_ordinary_text_is_left_alone() -> None:
    text = "Collecting 3 accounts; SecretAccessKey rotation is documented in the README"
    assert RedactingFilter().redact(text) == text
