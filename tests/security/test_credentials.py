"""Tests for finops_pipeline.security.credentials: masking, pickling refusal, serialization, redaction."""

from __future__ import annotations

import copy
import json
import logging
import pickle
from collections.abc import Iterator

import pytest

from finops_pipeline.errors import CredentialError
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials, AwsRoleCredentials
from finops_pipeline.security import credentials as credentials_module
from finops_pipeline.security.credentials import (
    Secret,
    credential_kind,
    deserialize_credentials,
    serialize_credentials,
)
from finops_pipeline.security.redaction import (
    GLOBAL_REDACTOR,
    RedactingFilter,
    install_redaction,
    register_secrets,
)

ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessiontoken"
ROLE_ARN = "arn:aws:iam::123456789012:role/finops-reader"
EXTERNAL_ID = "ext-id-4f1c9a2b"


def access_key_credentials(token: str | None = SESSION_TOKEN) -> AwsAccessKeyCredentials:
    return AwsAccessKeyCredentials(
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=Secret(SECRET_KEY),
        session_token=None if token is None else Secret(token),
    )


def role_credentials() -> AwsRoleCredentials:
    return AwsRoleCredentials(role_arn=ROLE_ARN, external_id=Secret(EXTERNAL_ID))


class ListHandler(logging.Handler):
    """Keep formatted output and records, as a real handler would emit them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


@pytest.fixture
def handler_logger() -> Iterator[tuple[logging.Logger, ListHandler]]:
    logger = logging.getLogger("tests.credentials.redaction")
    handler = ListHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)
    logger.filters.clear()
    logger.propagate = True


# --- Secret ----------------------------------------------------------------------------------


def test_secret_masks_repr_str_and_format() -> None:
    secret = Secret(SECRET_KEY)
    assert repr(secret) == "Secret('********')"
    assert str(secret) == "********"
    assert f"{secret}|{secret!r}|{secret:>10}" == "********|Secret('********')|  ********"
    assert SECRET_KEY not in f"{[secret]} {dict(k=secret)}"
    assert secret.reveal() == SECRET_KEY


def test_secret_equality_and_unhashable() -> None:
    assert Secret("abcdefgh") == Secret("abcdefgh")
    assert Secret("abcdefgh") != Secret("abcdefgX")
    assert Secret("abcdefgh") != "abcdefgh"
    with pytest.raises(TypeError):
        hash(Secret("abcdefgh"))


def test_secret_is_immutable_and_has_no_dict() -> None:
    secret = Secret(SECRET_KEY)
    with pytest.raises(AttributeError):
        secret._value = "other"  # type: ignore[misc]
    assert not hasattr(secret, "__dict__")


def test_secret_requires_str() -> None:
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]
    assert Secret(Secret(SECRET_KEY)).reveal() == SECRET_KEY


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_secret_refuses_pickling(protocol: int) -> None:
    with pytest.raises(TypeError) as info:
        pickle.dumps(Secret(SECRET_KEY), protocol=protocol)
    assert SECRET_KEY not in str(info.value)


def test_credentials_refuse_pickling_but_copy() -> None:
    for creds in (access_key_credentials(), role_credentials()):
        with pytest.raises(TypeError):
            pickle.dumps(creds)
        assert copy.copy(creds) == creds
        assert copy.deepcopy(creds) == creds


# --- credential types ------------------------------------------------------------------------


def test_access_key_repr_masks_everything_secret() -> None:
    creds = access_key_credentials()
    text = f"{creds!r} {creds!s} {[creds]}"
    assert "AKIA****MPLE" in text
    assert ACCESS_KEY_ID not in text
    assert SECRET_KEY not in text
    assert SESSION_TOKEN not in text
    assert repr(creds) == (
        "AwsAccessKeyCredentials(access_key_id='AKIA****MPLE', "
        "secret_access_key=Secret('********'), session_token=Secret('********'))"
    )
    assert "session_token=None" in repr(access_key_credentials(token=None))


def test_short_access_key_id_is_fully_masked() -> None:
    creds = AwsAccessKeyCredentials("AKIA1234", Secret(SECRET_KEY))
    assert "AKIA1234" not in repr(creds)


def test_role_repr_shows_arn_masks_external_id() -> None:
    creds = role_credentials()
    text = repr(creds)
    assert ROLE_ARN in text
    assert EXTERNAL_ID not in text
    assert "external_id=Secret('********')" in text


def test_credentials_reject_raw_strings_and_empty_values() -> None:
    with pytest.raises(TypeError) as info:
        AwsAccessKeyCredentials(ACCESS_KEY_ID, SECRET_KEY)  # type: ignore[arg-type]
    assert SECRET_KEY not in str(info.value)
    with pytest.raises(TypeError):
        AwsRoleCredentials(ROLE_ARN, EXTERNAL_ID)  # type: ignore[arg-type]
    with pytest.raises(CredentialError):
        AwsAccessKeyCredentials("", Secret(SECRET_KEY))
    with pytest.raises(CredentialError):
        AwsRoleCredentials(ROLE_ARN, Secret(""))


def test_credential_kind() -> None:
    assert credential_kind(access_key_credentials()) == "aws_access_key"
    assert credential_kind(role_credentials()) == "aws_role"
    assert AwsAccessKeyCredentials.KIND == "aws_access_key"
    assert role_credentials().kind == "aws_role"
    with pytest.raises(TypeError):
        credential_kind("aws_role")  # type: ignore[arg-type]


# --- serialization ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "creds",
    [access_key_credentials(), access_key_credentials(token=None), role_credentials()],
    ids=["access-key", "access-key-no-token", "role"],
)
def test_serialize_round_trip(creds: AwsAccessKeyCredentials | AwsRoleCredentials) -> None:
    data = serialize_credentials(creds)
    assert b" " not in data
    payload = json.loads(data)
    assert payload["kind"] == credential_kind(creds)
    restored = deserialize_credentials(data)
    assert type(restored) is type(creds)
    assert restored == creds


def test_serialized_form_is_stable() -> None:
    assert serialize_credentials(role_credentials()) == (
        b'{"external_id":"ext-id-4f1c9a2b",'
        b'"kind":"aws_role","role_arn":"arn:aws:iam::123456789012:role/finops-reader"}'
    )
    assert "session_token" not in json.loads(serialize_credentials(access_key_credentials(None)))


def test_deserialize_accepts_memoryview_and_ignores_extra_fields() -> None:
    payload = json.loads(serialize_credentials(role_credentials()))
    payload["added_in_a_later_release"] = 1
    data = json.dumps(payload).encode()
    assert deserialize_credentials(memoryview(data)) == role_credentials()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b'{"kind":"aws_role","external_id":"' + EXTERNAL_ID.encode(),
        b'["aws_role","' + EXTERNAL_ID.encode() + b'"]',
        b'{"external_id":"' + EXTERNAL_ID.encode() + b'","role_arn":"arn:x"}',
        b'{"kind":"oracle_' + EXTERNAL_ID.encode() + b'","external_id":"x"}',
        b'{"kind":"aws_role","external_id":"' + EXTERNAL_ID.encode() + b'"}',
        b'{"kind":"aws_access_key","access_key_id":"AKIA","secret_access_key":7}',
        b'{"kind":"aws_access_key","access_key_id":"AKIA","secret_access_key":""}',
        (
            b'{"kind":"aws_access_key","access_key_id":"AKIA",'
            b'"secret_access_key":"' + SECRET_KEY.encode() + b'","session_token":["x"]}'
        ),
    ],
    ids=[
        "empty",
        "not-utf8",
        "truncated-json",
        "not-an-object",
        "no-kind",
        "unknown-kind",
        "missing-role-arn",
        "non-string-secret",
        "empty-secret",
        "bad-session-token",
    ],
)
def test_deserialize_malformed_raises_without_values(data: bytes) -> None:
    with pytest.raises(CredentialError) as info:
        deserialize_credentials(data)
    rendered = f"{info.value} {info.value!r}"
    assert "malformed" in rendered
    # The unknown kind is not echoed (the registered kinds are listed).
    for value in (EXTERNAL_ID, SECRET_KEY, "oracle_"):
        assert value not in rendered
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None


def test_deserialize_names_the_missing_field() -> None:
    with pytest.raises(CredentialError) as info:
        deserialize_credentials(
            b'{"kind":"aws_role","external_id":"' + EXTERNAL_ID.encode() + b'"}'
        )
    assert "role_arn" in str(info.value)


# --- redaction -------------------------------------------------------------------------------


def test_filter_redacts_msg_and_args(
    handler_logger: tuple[logging.Logger, ListHandler],
) -> None:
    logger, handler = handler_logger
    logger.addFilter(RedactingFilter([SECRET_KEY, EXTERNAL_ID]))
    logger.info("key %s in %r", SECRET_KEY, {"external_id": EXTERNAL_ID})
    logger.info(f"inline {SECRET_KEY} and 100%s")
    record = handler.records[0]
    assert record.args == ()
    assert record.msg == "key ******** in {'external_id': '********'}"
    assert handler.lines[1] == "tests.credentials.redaction inline ******** and 100%s"
    assert all(SECRET_KEY not in line and EXTERNAL_ID not in line for line in handler.lines)


def test_filter_redacts_exception_text(
    handler_logger: tuple[logging.Logger, ListHandler],
) -> None:
    logger, handler = handler_logger
    logger.addFilter(RedactingFilter([SECRET_KEY]))
    try:
        raise RuntimeError(f"boto said: bad signature for {SECRET_KEY}")
    except RuntimeError:
        logger.exception("call failed")
    record = handler.records[0]
    assert record.exc_text is not None
    assert "RuntimeError" in record.exc_text
    assert "********" in record.exc_text
    assert SECRET_KEY not in record.exc_text
    assert SECRET_KEY not in handler.lines[0]


def test_filter_redacts_preexisting_exc_text_and_stack_info() -> None:
    redactor = RedactingFilter([SECRET_KEY])
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "msg", None, None)
    record.exc_text = f"Traceback...\nValueError: {SECRET_KEY}"
    record.stack_info = f"Stack (most recent call last): {SECRET_KEY}"
    assert redactor.filter(record) is True
    assert record.exc_text == "Traceback...\nValueError: ********"
    assert record.stack_info == "Stack (most recent call last): ********"


def test_filter_survives_bad_format_args() -> None:
    redactor = RedactingFilter([SECRET_KEY])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items", (SECRET_KEY,), None)
    assert redactor.filter(record) is True
    assert SECRET_KEY not in record.getMessage()
    assert record.args == ()


def test_filter_ignores_short_secrets_and_masks_longest_match_first() -> None:
    redactor = RedactingFilter(["abc12", "token-123", "token-123456"])
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "abc12 token-123456 token-123", None, None
    )
    redactor.filter(record)
    assert record.msg == "abc12 ******** ********"


def test_filter_without_secrets_leaves_record_alone() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "n=%d", (3,), None)
    assert RedactingFilter(["tiny"]).filter(record) is True
    assert record.msg == "n=%d"
    assert record.args == (3,)


def test_filter_accepts_secret_objects() -> None:
    redactor = RedactingFilter([Secret(SECRET_KEY)])
    assert redactor.redact(f"x{SECRET_KEY}x") == "x********x"


def test_filter_with_caplog(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.credentials.caplog")
    redactor = RedactingFilter([EXTERNAL_ID])
    logger.addFilter(redactor)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("assuming role with external id %s", EXTERNAL_ID)
    finally:
        logger.removeFilter(redactor)
    assert EXTERNAL_ID not in caplog.text
    assert "external id ********" in caplog.text


@pytest.fixture
def clean_global_redactor() -> Iterator[None]:
    root = logging.getLogger()
    saved_secrets = set(GLOBAL_REDACTOR._secrets)
    handler = ListHandler()
    root.addHandler(handler)
    yield
    root.removeHandler(handler)
    for name in ("", "botocore", "boto3", "urllib3", "dagster"):
        logging.getLogger(name).removeFilter(GLOBAL_REDACTOR)
    for existing in root.handlers:
        existing.removeFilter(GLOBAL_REDACTOR)
    GLOBAL_REDACTOR._secrets.clear()
    GLOBAL_REDACTOR.add(*saved_secrets)


@pytest.mark.usefixtures("clean_global_redactor")
def test_install_redaction_covers_loggers_and_root_handlers() -> None:
    register_secrets(SECRET_KEY, "short", Secret(EXTERNAL_ID))
    assert "short" not in GLOBAL_REDACTOR._secrets
    install_redaction()
    install_redaction()

    root = logging.getLogger()
    for name in ("", "botocore", "boto3", "urllib3", "dagster"):
        assert logging.getLogger(name).filters.count(GLOBAL_REDACTOR) == 1
    for handler in root.handlers:
        assert handler.filters.count(GLOBAL_REDACTOR) == 1

    capture = next(h for h in root.handlers if isinstance(h, ListHandler))
    # A child of botocore propagates to root handlers without passing botocore's own filters.
    child = logging.getLogger("botocore.credentials.tests")
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        child.warning("signing with %s / %s", SECRET_KEY, EXTERNAL_ID)
    finally:
        root.setLevel(old_level)
    assert capture.lines
    assert capture.lines[-1].endswith("signing with ******** / ********")


def test_module_exports() -> None:
    namespace: dict[str, object] = {}
    exec("from finops_pipeline.security.credentials import *", namespace)
    namespace.pop("__builtins__")
    assert namespace == {
        "Credentials": credentials_module.Credentials,
        "Secret": Secret,
        "credential_kind": credential_kind,
        "deserialize_credentials": deserialize_credentials,
        "open_credentials": credentials_module.open_credentials,
        "seal_credentials": credentials_module.seal_credentials,
        "serialize_credentials": serialize_credentials,
    }
    namespace = {}
    exec("from finops_pipeline.security.redaction import *", namespace)
    namespace.pop("__builtins__")
    assert namespace == {
        "GLOBAL_REDACTOR": GLOBAL_REDACTOR,
        "MASK": "********",
        "RedactingFilter": RedactingFilter,
        "install_redaction": install_redaction,
        "register_secrets": register_secrets,
    }
    assert isinstance(GLOBAL_REDACTOR, RedactingFilter)
