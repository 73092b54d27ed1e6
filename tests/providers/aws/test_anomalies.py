"""AWS Cost Anomaly Detection's GetAnomalies through a real boto3 client and Stubber.

Responses follow the ``ce`` model's ``GetAnomaliesResponse`` shape (``Anomaly``,
``RootCause``, ``AnomalyScore``, ``Impact``); Stubber validates them before the client
returns them, so a misspelt field fails here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from finops_pipeline.errors import ProviderAccessDeniedError, ProviderDataError
from finops_pipeline.providers.aws.anomalies import anomalies_request, fetch_aws_anomalies

START, END = dt.date(2026, 9, 1), dt.date(2026, 11, 29)
MONITOR = "arn:aws:ce::123456789012:anomalymonitor/7c1b5e3a-3f0e-4b4e-9d2a-5f0d2c1b7a10"


def anomaly(
    anomaly_id: str,
    start: str,
    service: str | None,
    *,
    end: str | None = None,
    expected: float = 100.0,
    actual: float = 400.0,
    score: float = 78.5,
    dimension: str = "Amazon Elastic Compute Cloud - Compute",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "AnomalyId": anomaly_id,
        "AnomalyStartDate": start,
        "DimensionValue": dimension,
        "AnomalyScore": {"MaxScore": score, "CurrentScore": score / 2},
        "Impact": {
            "MaxImpact": (actual - expected) / 2,
            "TotalImpact": actual - expected,
            "TotalActualSpend": actual,
            "TotalExpectedSpend": expected,
            "TotalImpactPercentage": 100 * (actual - expected) / expected,
        },
        "MonitorArn": MONITOR,
        "Feedback": "YES",
    }
    if service is not None:
        body["RootCauses"] = [
            {
                "Service": service,
                "Region": "us-east-1",
                "LinkedAccount": "123456789012",
                "LinkedAccountName": "production",
                "UsageType": "BoxUsage:m5.large",
                "Impact": {"Contribution": actual - expected},
            }
        ]
    if end is not None:
        body["AnomalyEndDate"] = end
    return body


@pytest.fixture
def ce() -> Iterator[tuple[Any, Stubber]]:
    session = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="not-a-real-secret",
        region_name="us-east-1",
        botocore_session=botocore.session.Session(),
    )
    client = session.client("ce")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_anomalies_become_rows_on_their_first_day_with_every_page_counted(
    ce: tuple[Any, Stubber],
) -> None:
    client, stubber = ce
    request = anomalies_request(START, END)
    stubber.add_response(
        "get_anomalies",
        {
            "Anomalies": [
                anomaly(
                    "a-1",
                    "2026-10-06T00:00:00Z",
                    "Amazon Elastic Compute Cloud - Compute",
                    end="2026-10-07T00:00:00Z",
                ),
                # A second monitor reporting the same service and day, with less impact.
                anomaly(
                    "a-2",
                    "2026-10-06T00:00:00Z",
                    "Amazon Elastic Compute Cloud - Compute",
                    actual=150.0,
                ),
            ],
            "NextPageToken": "page-2",
        },
        request,
    )
    stubber.add_response(
        "get_anomalies",
        # No root cause yet: the monitor's dimension names the service.
        {
            "Anomalies": [
                anomaly(
                    "a-3",
                    "2026-11-20",
                    None,
                    dimension="Amazon Redshift",
                    expected=50.0,
                    actual=90.0,
                    score=41.0,
                )
            ]
        },
        {**request, "NextPageToken": "page-2"},
    )

    fetched = fetch_aws_anomalies(client, start=START, end=END)

    assert fetched.paid_requests == 2
    assert fetched.rows.to_dict("records") == [
        {
            "service": "Amazon Elastic Compute Cloud - Compute",
            "currency": "USD",
            "date": dt.date(2026, 10, 6),
            "expected": 100.0,
            "actual": 400.0,
            "impact": 300.0,
            "score": 78.5,
            "direction": "spike",
            "confirmed": True,
        },
        {
            "service": "Amazon Redshift",
            "currency": "USD",
            "date": dt.date(2026, 11, 20),
            "expected": 50.0,
            "actual": 90.0,
            "impact": 40.0,
            "score": 41.0,
            "direction": "spike",
            "confirmed": False,
        },
    ]


def test_denied_and_malformed_answers_are_typed_errors(ce: tuple[Any, Stubber]) -> None:
    client, stubber = ce
    stubber.add_client_error(
        "get_anomalies",
        service_error_code="AccessDeniedException",
        service_message="User is not authorized to perform: ce:GetAnomalies",
        http_status_code=400,
        expected_params=anomalies_request(START, END),
    )
    with pytest.raises(ProviderAccessDeniedError, match="Grant ce:GetAnomalies"):
        fetch_aws_anomalies(client, start=START, end=END)

    stubber.add_response(
        "get_anomalies",
        {"Anomalies": [anomaly("a-4", "not a date", "AWS Lambda")]},
        anomalies_request(START, END),
    )
    with pytest.raises(ProviderDataError, match="a-4 without a valid start date"):
        fetch_aws_anomalies(client, start=START, end=END)


def test_the_sandbox_serves_its_injected_spikes_page_by_page() -> None:
    """GetAnomalies from the sandbox through the real client and hook, one result a page."""
    from finops_pipeline.providers.aws.sandbox.generator import SandboxGenerator
    from finops_pipeline.providers.aws.sandbox.hook import (
        SANDBOX_ENDPOINT_URL,
        SandboxSettings,
        attach_sandbox,
        sandbox_credentials,
    )

    number, as_of = "210000000001", dt.date(2026, 12, 1)
    credentials = sandbox_credentials(number)
    client = boto3.client(
        "ce",
        region_name="us-east-1",
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key.reveal(),
        endpoint_url=SANDBOX_ENDPOINT_URL,
    )
    attach_sandbox(client, SandboxSettings(as_of=as_of))
    request = {
        "DateInterval": {"StartDate": "2026-09-02", "EndDate": "2026-11-30"},
        "MaxResults": 1,
    }
    pages, token = [], None
    while True:
        page = client.get_anomalies(**request, **({"NextPageToken": token} if token else {}))
        pages.append(page)
        token = page.get("NextPageToken")
        if not token:
            break
    anomalies = [a for page in pages for a in page["Anomalies"]]
    assert len(pages) == len(anomalies) > 3
    # The payer sees its members' spikes too, each with its root cause's account.
    spikes = {
        (spike.account, spike.service, spike.start.isoformat()): spike
        for member in (number, "210000000002", "210000000003")
        for spike in SandboxGenerator().injected_anomalies(member)
        if dt.date(2026, 9, 2) <= spike.start <= dt.date(2026, 11, 30)
    }
    served = {
        (a["RootCauses"][0]["LinkedAccount"], a["DimensionValue"], a["AnomalyStartDate"]): a
        for a in anomalies
    }
    assert served.keys() == spikes.keys()
    for key, a in served.items():
        assert a["Impact"]["TotalImpact"] > 0
        # Ended once the day after its last has passed; until then it is open.
        ended = spikes[key].last_day < as_of - dt.timedelta(days=1)
        assert ("AnomalyEndDate" in a) == ended
