"""AWS Cost Anomaly Detection (``GetAnomalies``) for sandbox accounts, in Cost Explorer's JSON.

The sandbox's anomaly monitor "detects" exactly the spikes the generator injected into the
caller's organisation (see :meth:`SandboxGenerator.injected_anomalies`), as a perfect
detector would: each starts on its first day, ends on its last once the day after it has
passed, and reports the injected usage type's actual spend against what it costs without the
spike. Paging follows ``MaxResults`` and ``NextPageToken`` like the real API.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from typing import Any

from finops_pipeline.providers.aws.sandbox.catalogue import organisation_members
from finops_pipeline.providers.aws.sandbox.generator import InjectedAnomaly, Pull, SandboxGenerator
from finops_pipeline.providers.aws.sandbox.service import SandboxApiError

ANOMALIES_OPERATION = "GetAnomalies"
DEFAULT_MAX_RESULTS = 20
_REGIONS = {
    "USW2-": "us-west-2",
    "EUC1-": "eu-central-1",
    "EU-": "eu-west-1",
    "APN1-": "ap-northeast-1",
    "APS2-": "ap-southeast-2",
    "CAN1-": "ca-central-1",
}


class AnomalyDetectionSandbox:
    """GetAnomalies over a :class:`SandboxGenerator`."""

    def __init__(self, generator: SandboxGenerator) -> None:
        self.generator = generator

    def get_anomalies(self, body: dict[str, Any], *, caller: str, pull: Pull) -> dict[str, Any]:
        """One page of anomalies that started within ``DateInterval``.

        Raises:
            SandboxApiError: the request is invalid or its token is bad.
        """
        interval = body.get("DateInterval") or {}
        try:
            start = dt.date.fromisoformat(str(interval["StartDate"])[:10])
            end = (
                dt.date.fromisoformat(str(interval["EndDate"])[:10])
                if interval.get("EndDate")
                else pull.as_of
            )
        except (KeyError, ValueError):
            raise SandboxApiError(
                "ValidationException", "DateInterval needs a StartDate (and EndDate) as YYYY-MM-DD"
            ) from None
        size = body.get("MaxResults") or DEFAULT_MAX_RESULTS
        if not isinstance(size, int) or size < 1:
            raise SandboxApiError("ValidationException", "MaxResults must be a positive integer")
        spikes = [
            spike
            for member in organisation_members(caller)
            for spike in self.generator.injected_anomalies(member)
            if start <= spike.start <= end and spike.start < pull.as_of
        ]
        spikes.sort(key=lambda s: (s.start, s.account, s.service, s.usage_type))
        fingerprint = hashlib.sha256(
            json.dumps(
                [caller, {k: v for k, v in body.items() if k != "NextPageToken"}], sort_keys=True
            ).encode()
        ).hexdigest()[:24]
        offset = _offset(body.get("NextPageToken"), fingerprint, pull, len(spikes))
        page = spikes[offset : offset + size]
        response: dict[str, Any] = {
            "Anomalies": [self._anomaly(spike, caller, pull) for spike in page]
        }
        if offset + size < len(spikes):
            payload = {"o": offset + size, "f": fingerprint, "a": pull.as_of.isoformat()}
            response["NextPageToken"] = base64.urlsafe_b64encode(
                json.dumps(payload).encode()
            ).decode()
        return response

    def _anomaly(self, spike: InjectedAnomaly, caller: str, pull: Pull) -> dict[str, Any]:
        last_seen = min(spike.last_day, pull.as_of - dt.timedelta(days=1))
        actual = expected = largest = 0.0
        day = spike.start
        while day <= last_seen:
            cost = sum(
                float(row.unblended)
                for row in self.generator.day_costs(spike.account, day, pull).rows
                if row.usage_type == spike.usage_type
            )
            actual += cost
            expected += cost / spike.multiplier
            largest = max(largest, cost - cost / spike.multiplier)
            day += dt.timedelta(days=1)
        impact = actual - expected
        ended = spike.last_day < pull.as_of - dt.timedelta(days=1)
        prefix = next((p for p in _REGIONS if spike.usage_type.startswith(p)), "")
        anomaly: dict[str, Any] = {
            "AnomalyId": _uuid(spike.account, spike.service, spike.usage_type, spike.start),
            "AnomalyStartDate": spike.start.isoformat(),
            "DimensionValue": spike.service,
            "RootCauses": [
                {
                    "Service": spike.service,
                    "Region": _REGIONS.get(prefix, "us-east-1"),
                    "LinkedAccount": spike.account,
                    "UsageType": spike.usage_type,
                    "Impact": {"Contribution": round(impact, 2)},
                }
            ],
            "AnomalyScore": {
                "MaxScore": round(min(100.0, 20.0 * spike.multiplier), 2),
                "CurrentScore": 0.0 if ended else round(min(100.0, 20.0 * spike.multiplier), 2),
            },
            "Impact": {
                "MaxImpact": round(largest, 2),
                "TotalImpact": round(impact, 2),
                "TotalActualSpend": round(actual, 2),
                "TotalExpectedSpend": round(expected, 2),
                "TotalImpactPercentage": round(100 * impact / expected, 2) if expected else 0.0,
            },
            "MonitorArn": f"arn:aws:ce::{caller}:anomalymonitor/{_uuid(caller, 'monitor')}",
        }
        if ended:
            anomaly["AnomalyEndDate"] = spike.last_day.isoformat()
        return anomaly


def _uuid(*parts: object) -> str:
    text = hashlib.sha256(":".join(str(part) for part in parts).encode()).hexdigest()[:32]
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _offset(token: Any, fingerprint: str, pull: Pull, total: int) -> int:
    if not token:
        return 0
    try:
        payload = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        offset = int(payload["o"])
        valid = payload["f"] == fingerprint and payload["a"] == pull.as_of.isoformat()
    except (binascii.Error, ValueError, KeyError, TypeError):
        valid, offset = False, 0
    if not valid or not 0 < offset < total:
        raise SandboxApiError("InvalidNextTokenException", "Invalid NextPageToken")
    return offset
