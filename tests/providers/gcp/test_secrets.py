"""The service-account key, the signed assertion and access tokens never leave in errors,
logs (records and their extras) or reprs, even with every Google logger at DEBUG."""

from __future__ import annotations

import datetime as dt
import json
import logging
import traceback
from collections.abc import Iterator

import pytest

from finops_pipeline.errors import FinopsError
from finops_pipeline.providers.gcp.collector import collect_billing_export
from finops_pipeline.providers.gcp.sandbox import BigQuerySandbox
from finops_pipeline.providers.gcp.service_account import ServiceAccountKey
from finops_pipeline.sync.ranges import DateRange
from tests.providers.gcp.conftest import BILLING_PROJECT, PROJECT_A, export_row, utc

WINDOW = DateRange(dt.date(2025, 1, 10), dt.date(2025, 1, 10))


class _Everything(logging.Handler):
    """Keeps every record with all its attributes, extras included."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(repr(record.__dict__))
        self.texts.append(record.getMessage())


@pytest.fixture
def every_log_record() -> Iterator[_Everything]:
    handler = _Everything()
    loggers = [logging.getLogger(), logging.getLogger("google"), logging.getLogger("urllib3")]
    previous = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for logger, level in previous:
            logger.removeHandler(handler)
            logger.setLevel(level)
        for name in ("google.auth", "google.oauth2", "google.cloud.bigquery", "google.api_core"):
            logging.getLogger(name).setLevel(logging.NOTSET)


def _secret_fragments(info: dict) -> list[str]:
    fragments = [json.dumps(info), info["private_key"], info["private_key_id"]]
    fragments += [line for line in info["private_key"].splitlines() if line and "-----" not in line]
    return fragments


def test_the_key_never_appears_in_errors_logs_or_reprs(
    bigquery_sandbox: BigQuerySandbox,
    reader_key_info: dict,
    make_export,
    open_client,
    every_log_record: _Everything,
) -> None:
    # The logger levels are reset so the client's own quieting is what is tested.
    for name in ("google.auth", "google.oauth2", "google.cloud.bigquery", "google.api_core"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    surfaces: list[str] = []
    key = ServiceAccountKey.from_json(json.dumps(reader_key_info))
    surfaces += [repr(key), str(key), f"{key}", repr(key.key_json)]

    good = make_export([export_row(PROJECT_A, utc(2025, 1, 10, 5), 1.0)])
    client = open_client(good, key)
    surfaces.append(repr(client))
    collect_billing_export(
        client, project_ids=[PROJECT_A], window=WINDOW, as_of=dt.date(2025, 3, 1)
    )

    other = bigquery_sandbox.create_service_account(
        "leak-check@billing-host-01.iam.gserviceaccount.com", project_id=BILLING_PROJECT
    )
    forged_info = dict(reader_key_info, private_key=other["private_key"])
    failures = [
        # a refused key
        (good, ServiceAccountKey.from_json(json.dumps(forged_info))),
        # a table it may not read
        (make_export([export_row(PROJECT_A, utc(2025, 1, 10, 5), 1.0)], readable=False), key),
        # the bytes cap
        (
            make_export([export_row(PROJECT_A, utc(2025, 1, 10, 5), 1.0)], maximum_bytes_billed=1),
            key,
        ),
    ]
    for export, failing_key in failures:
        with pytest.raises(FinopsError) as caught:
            collect_billing_export(
                open_client(export, failing_key),
                project_ids=[PROJECT_A],
                window=WINDOW,
                as_of=dt.date(2025, 3, 1),
            )
        surfaces += [str(caught.value), repr(caught.value)]
        surfaces += traceback.format_exception(caught.value)
    with pytest.raises(FinopsError) as caught:
        ServiceAccountKey.from_json(json.dumps(reader_key_info)[:-5])
    surfaces += [str(caught.value), *traceback.format_exception(caught.value)]

    secrets = _secret_fragments(reader_key_info) + _secret_fragments(forged_info)
    secrets += bigquery_sandbox.issued_tokens() + bigquery_sandbox.received_assertions()
    assert bigquery_sandbox.issued_tokens() and bigquery_sandbox.received_assertions()
    haystack = "\n".join(surfaces + every_log_record.texts)
    assert every_log_record.texts, "nothing was logged; the check would prove nothing"
    leaked = [secret[:12] + "..." for secret in secrets if secret in haystack]
    assert not leaked
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(key)
