"""moto IAM set-ups: the pipeline's principal in one account, customer roles in another.

moto enforces IAM only inside ``enable_iam_authentication()``: then it checks signatures,
identity policies, the role's trust-policy principal and its ``sts:ExternalId`` condition
(moto/iam/access_control.py, ``_check_role_trust_relationship``). Set-up runs before that,
unauthenticated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.providers.aws.roles import PipelinePrincipal, pipeline_principal, trust_policy
from finops_pipeline.security.credentials import Secret

PIPELINE_ACCOUNT = "123456789012"  # moto's default account
CUSTOMER_ACCOUNT = "210987654321"

CE_READ_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["ce:GetCostAndUsage"], "Resource": "*"}],
}
ASSUME_ANY_ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": "*"}],
}


def iam_client(account: str = PIPELINE_ACCOUNT) -> Any:
    """An IAM client acting in ``account`` (moto maps assumed-role keys to the role's account)."""
    if account == PIPELINE_ACCOUNT:
        return boto3.client("iam", region_name="us-east-1")
    assumed = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/bootstrap", RoleSessionName="bootstrap"
    )["Credentials"]
    return boto3.client(
        "iam",
        region_name="us-east-1",
        aws_access_key_id=assumed["AccessKeyId"],
        aws_secret_access_key=assumed["SecretAccessKey"],
        aws_session_token=assumed["SessionToken"],
    )


@dataclass(frozen=True)
class IamUser:
    arn: str
    access_key_id: str
    secret_access_key: str

    @property
    def credentials(self) -> AwsAccessKeyCredentials:
        return AwsAccessKeyCredentials(
            access_key_id=self.access_key_id, secret_access_key=Secret(self.secret_access_key)
        )


def create_user(
    name: str, policy: dict[str, Any] | None, account: str = PIPELINE_ACCOUNT
) -> IamUser:
    iam = iam_client(account)
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return IamUser(arn, key["AccessKeyId"], key["SecretAccessKey"])


def create_pipeline_principal(name: str = "finops-pipeline") -> tuple[IamUser, PipelinePrincipal]:
    user = create_user(name, ASSUME_ANY_ROLE_POLICY)
    principal = pipeline_principal(user.access_key_id, user.secret_access_key)
    assert principal is not None
    return user, principal


def create_customer_role(
    name: str,
    *,
    pipeline_arn: str,
    external_id: str | None,
    account: str = CUSTOMER_ACCOUNT,
    permissions: dict[str, Any] | None = CE_READ_POLICY,
) -> str:
    """A role trusting the pipeline; ``external_id=None`` leaves out the condition (unsafe)."""
    if external_id is None:
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": pipeline_arn}, "Action": "sts:AssumeRole"}
            ],
        }
    else:
        document = trust_policy(pipeline_arn, external_id)
    iam = iam_client(account)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(document))["Role"][
        "Arn"
    ]
    if permissions is not None:
        iam.put_role_policy(
            RoleName=name, PolicyName="finops-read", PolicyDocument=json.dumps(permissions)
        )
    return arn


def assumed_role_secrets() -> list[str]:
    """Every session secret and token moto's STS has handed out, in every account."""
    from moto.sts.models import sts_backends

    values: list[str] = []
    for account in sts_backends:
        for region_backend in sts_backends[account].values():
            for role in region_backend.assumed_roles:
                values.extend([role.secret_access_key, role.session_token])
    return values


def assume_role_calls(role_arn: str) -> int:
    """How many times moto's STS has issued a session for ``role_arn``."""
    from moto.sts.models import sts_backends

    total = 0
    for account in sts_backends:
        for region_backend in sts_backends[account].values():
            total += sum(1 for role in region_backend.assumed_roles if role.role_arn == role_arn)
    return total


def simulate_sts_trust(monkeypatch: Any) -> None:
    """Make moto's AssumeRole evaluate the target role's trust policy the way STS does.

    Inside ``enable_iam_authentication()`` moto checks a role's trust policy only when the role
    is in the caller's own account (moto/iam/access_control.py, ``_is_assuming_role_operation``
    looks the role up in the caller's IAM backend), so cross-account AssumeRole, the case that
    matters here, is never checked. And its ``StringEquals`` passes when the request lacks the
    key (see :func:`enforce_missing_condition_keys`). This fake sits at the STS boundary: while
    IAM is simulated, AssumeRole evaluates the role's trust policy with moto's own policy
    engine (principal = the caller's ARN, ``sts:ExternalId`` = what was sent) and answers
    ``AccessDenied`` as STS does when it does not allow the call. Outside the simulation it
    changes nothing, so set-up code can still assume bootstrap roles freely.
    """
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.iam.models import iam_backends
    from moto.sts.exceptions import STSClientError
    from moto.sts.responses import TokenResponse

    enforce_missing_condition_keys(monkeypatch)
    original = TokenResponse.assume_role

    def assume_role(self: Any) -> Any:
        if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
            return original(self)  # IAM is not being simulated
        role_arn = self._get_param("RoleArn")
        external_id = self._get_param("ExternalId")
        _, caller_arn, _ = self.backend.get_caller_identity(self.get_access_key(), self.region)
        denied = STSClientError(
            "AccessDenied",
            f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: "
            f"{role_arn}",
        )
        account = role_arn.split(":")[4]
        try:
            role = iam_backends[account]["global"].get_role_by_arn(role_arn)
        except Exception:
            raise denied from None
        conditions = {"sts:ExternalId": external_id} if external_id else {}
        result = IAMPolicy(role.assume_role_policy_document).is_action_permitted(
            "sts:AssumeRole", role_arn, caller_arn, conditions
        )
        if result != PermissionResult.PERMITTED:
            raise denied
        return original(self)

    monkeypatch.setattr(TokenResponse, "assume_role", assume_role)


def enforce_missing_condition_keys(monkeypatch: Any) -> None:
    """Make moto's trust-policy conditions fail when the request lacks the condition key.

    moto checks ``sts:ExternalId`` when the caller sends one (a wrong id is refused), but passes
    a ``StringEquals`` condition whose key is absent from the request: it compares only the
    values present (moto/iam/policy_conditions.py, ``TrustCondition.verify_condition``). AWS
    does the opposite: "If the key that you specify in a policy condition is not present in the
    request context, the values do not match" (IAM condition-operator docs; only ``...IfExists``
    operators differ). This patch applies AWS's rule to that one case, so AssumeRole without
    the external id is refused exactly when real STS would refuse it.
    """
    from moto.iam.policy_conditions import TrustCondition

    original = TrustCondition.verify_condition

    def verify_condition(self: TrustCondition, actual_values: list[str]) -> bool:
        if self._condition == "StringEquals" and len(actual_values) < len(self.context_keys):
            return False
        return original(self, actual_values)

    monkeypatch.setattr(TrustCondition, "verify_condition", verify_condition)
