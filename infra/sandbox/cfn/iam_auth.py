"""IAM evaluated in the sandbox's moto: a deliberate extension, registered by `infra.sandbox.cfn.install()`.

moto 5.2 can check each request against the caller's IAM policies (`moto.core.authorization`, switched on by
`POST /moto-api/reset-auth` with `0`, off with `inf`), but as shipped it cannot serve the sandbox:

- it asks for the resource `*` for almost every action, so a statement naming ARNs never allows anything
  (VelaOps's policy scopes most of its grants): here an unknown resource matches the statement's, which
  makes moto's check action-only (resources are held by tests/sandbox/test_iam_policy.py instead);
- a statement whose `Condition` does not hold answers Deny instead of not applying, and a trust policy
  naming a service principal raises TypeError;
- its AccessDenied is an XML `AccessDenied` for every service; AWS's JSON-protocol services (DSQL, Lambda,
  DynamoDB, Secrets Manager) answer `AccessDeniedException`, and AWS names the resource and the reason;
- a GET without a body (every read of a REST service: DSQL's ListClusters, Lambda's GetFunctionConfiguration)
  was re-signed over the request's headers as if they were its body, so its signature never matched;
- nothing may bootstrap an account once it is on: the sandbox's admin key (ADMIN_ACCESS_KEY_ID) is a
  principal allowed everything, whatever moto holds (it survives `/moto-api/reset`).

Endpoints the sandbox's other parts ask (loopback, no authentication: the sandbox's own plumbing; the DSQL
endpoint's login check, `find_principal` and `evaluate` here, is infra/sandbox/dsql_login.py's):
  POST /moto-api/sandbox/iam/access-key  {"user", "access_key_id", "secret_access_key"}: the key is the user's
  POST /moto-api/sandbox/iam/authorize   {"access_key_id", "action", "resource"}: {"allowed", "principal"}
  POST /moto-api/sandbox/iam/function-credentials {"function_name"}: the Lambda service's AssumeRole of the
       function's execution role (trust policy checked for lambda.amazonaws.com); the same session while valid
  POST /moto-api/sandbox/iam/function-context {"function_name"}: the function's configuration and that session
       together, what a fresh handler starts with (the health route asks at each request)
"""

from __future__ import annotations

import datetime
import functools
import json
from typing import Any

ADMIN_ACCESS_KEY_ID = "sandbox-admin"
ADMIN_SECRET_ACCESS_KEY = "sandbox-admin"
ADMIN_USER = "sandbox-admin"
_ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
LAMBDA_SERVICE = "lambda.amazonaws.com"
# The Lambda service keeps a function's role session and renews it well before it expires.
_SESSION_SECONDS = 3600
_RENEW_BEFORE = datetime.timedelta(minutes=15)

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.iam import access_control
    from moto.moto_api._internal import urls

    access_control.create_access_key = _with_admin(access_control.create_access_key)
    access_control.IAMPolicyStatement.is_action_permitted = _statement_permits
    access_control.IAMRequestBase.check_action_permitted = _remember_resource(
        access_control.IAMRequestBase.check_action_permitted
    )
    access_control.IAMRequest._raise_access_denied = _raise_access_denied
    access_control.IAMRequest._create_aws_request = _signed_request(access_control.IAMRequest._create_aws_request)
    for name, handler in (
        ("access-key", access_key),
        ("authorize", authorize),
        ("function-credentials", function_credentials),
        ("function-context", function_context),
    ):
        urls.url_paths[f"{{0}}/moto-api/sandbox/iam/{name}$"] = handler
    _installed = True


# -- evaluation ---------------------------------------------------------------------------------------------


class _AdminAccessKey:
    def __init__(self, account_id: str, partition: str) -> None:
        self.arn = f"arn:{partition}:iam::{account_id}:user/{ADMIN_USER}"

    def create_credentials(self) -> Any:
        from botocore.credentials import Credentials

        return Credentials(ADMIN_ACCESS_KEY_ID, ADMIN_SECRET_ACCESS_KEY)

    def collect_policies(self) -> list[str]:
        return [_ADMIN_POLICY]


def _with_admin(create_access_key: Any) -> Any:
    @functools.wraps(create_access_key)
    def wrapper(account_id: str, partition: str, access_key_id: str, headers: dict[str, str]) -> Any:
        if access_key_id == ADMIN_ACCESS_KEY_ID:
            return _AdminAccessKey(account_id, partition)
        return create_access_key(account_id, partition, access_key_id, headers)

    return wrapper


def _statement_permits(
    self: Any,
    action: str,
    resource: str = "*",
    principal: str | None = None,
    incoming_condition_values: dict[str, str] | None = None,
) -> Any:
    """moto's statement evaluation, where a statement that does not apply is NEUTRAL (not DENIED)."""
    from moto.iam.access_control import PermissionResult

    statement = self._statement
    if "NotAction" in statement:
        concerned = not self._check_element_matches("NotAction", action)
    else:
        concerned = self._check_element_matches("Action", action)
    if not concerned:
        return PermissionResult.NEUTRAL
    if principal is not None and not _principal_matches(statement.get("Principal"), principal):
        return PermissionResult.NEUTRAL
    if not self._check_conditions(incoming_condition_values):
        return PermissionResult.NEUTRAL  # a condition that does not hold: the statement does not apply
    # "*": moto could not say which resource the request is about; the statement's resources count as met.
    if statement.get("Resource") and resource != "*" and not self._check_element_matches("Resource", resource):
        return PermissionResult.NEUTRAL
    return PermissionResult.PERMITTED if statement.get("Effect") == "Allow" else PermissionResult.DENIED


def _principal_matches(expected: Any, principal: str) -> bool:
    if expected is None:
        return True
    if expected == "*":
        return True
    if not isinstance(expected, dict):
        return False
    listed = expected.get("AWS", [])
    listed = [listed] if isinstance(listed, str) else list(listed)
    account = principal.split(":")[4] if principal.count(":") >= 5 else ""
    # An account (its id or its root ARN) as principal delegates to that account's own policies.
    return (
        "*" in listed
        or principal in listed
        or any(item in (account, f"arn:aws:iam::{account}:root") for item in listed)
    )


def evaluate(policies: list[Any], action: str, resource: str) -> bool:
    """Identity-based evaluation as IAM does it: an explicit Deny wins, else some Allow must apply."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    allowed = False
    for policy in policies:
        result = IAMPolicy(policy).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return False
        allowed = allowed or result == PermissionResult.PERMITTED
    return allowed


def _signed_request(create_aws_request: Any) -> Any:
    @functools.wraps(create_aws_request)
    def wrapper(self: Any) -> Any:
        request = create_aws_request(self)
        if not self._body and self._method in ("GET", "HEAD", "DELETE"):
            request.data = b""  # the client signed an empty payload (moto substituted its parsed headers)
        return request

    return wrapper


def _remember_resource(check_action_permitted: Any) -> Any:
    @functools.wraps(check_action_permitted)
    def wrapper(self: Any, resource: str) -> None:
        self._sandbox_resource = resource
        check_action_permitted(self, resource)

    return wrapper


@functools.cache
def _protocol(service: str) -> str:
    import botocore.session

    try:
        return botocore.session.get_session().get_service_model(service).protocol
    except Exception:
        return "query"


def denied_message(principal_arn: str, action: str, resource: str) -> str:
    # IAM's wording for an implicit deny (IAM user guide, "Troubleshooting access denied error messages",
    # checked 2026-12-02); moto does not know the resource of most requests: then it is not named.
    on = f" on resource: {resource}" if resource and resource != "*" else ""
    return (
        f"User: {principal_arn} is not authorized to perform: {action}{on} "
        f"because no identity-based policy allows the {action} action"
    )


def _raise_access_denied(self: Any) -> None:
    from moto.core.exceptions import AccessDeniedError, JsonRESTError

    message = denied_message(self._access_key.arn, self._action, getattr(self, "_sandbox_resource", "*"))
    if self._service == "ec2":
        raise AccessDeniedError(user_arn=self._access_key.arn, action=self._action)
    if _protocol(self._service) in ("json", "rest-json"):
        error = JsonRESTError("AccessDeniedException", message)
        error.code = 403
        raise error
    # Query and XML services: moto's shape (ErrorResponse/Error with Type Sender, Code AccessDenied), AWS's message.
    from xmltodict import unparse

    error = AccessDeniedError(user_arn=self._access_key.arn, action=self._action)
    error.message = message
    body = {"Code": "AccessDenied", "Message": message, "Type": "Sender"}
    error.description = unparse({"ErrorResponse": {"Errors": {"Error": body}}}, full_document=True)
    raise error


# -- principals ---------------------------------------------------------------------------------------------


def _backends(account_id: str) -> tuple[Any, Any]:
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    return iam_backends[account_id]["aws"], sts_backends[account_id]["aws"]


def find_principal(access_key_id: str, account_id: str) -> dict[str, Any] | None:
    """The principal an access key belongs to: the admin, an IAM user's active key, or an STS session."""
    if access_key_id == ADMIN_ACCESS_KEY_ID:
        return {
            "arn": f"arn:aws:iam::{account_id}:user/{ADMIN_USER}",
            "secret_access_key": ADMIN_SECRET_ACCESS_KEY,
            "session_token": None,
            "policies": [_ADMIN_POLICY],
        }
    from moto.iam.access_control import AssumedRoleAccessKey, IAMUserAccessKey

    iam, sts = _backends(account_id)
    for user in iam.list_users("/", None, None):
        for key in user.access_keys:
            if key.access_key_id == access_key_id and key.status == "Active":
                owner = IAMUserAccessKey(account_id, "aws", access_key_id, {})
                return {
                    "arn": owner.arn,
                    "secret_access_key": key.secret_access_key,
                    "session_token": None,
                    "policies": owner.collect_policies(),
                }
    for session in sts.assumed_roles:
        if session.access_key_id == access_key_id and session.expiration > _now():
            owner = AssumedRoleAccessKey(
                account_id, "aws", access_key_id, {"X-Amz-Security-Token": session.session_token}
            )
            return {
                "arn": owner.arn,
                "secret_access_key": session.secret_access_key,
                "session_token": session.session_token,
                "policies": owner.collect_policies(),
            }
    return None


def _now() -> datetime.datetime:
    from moto.core.utils import utcnow

    return utcnow()


def _trusts_lambda(trust_policy: str) -> bool:
    document = json.loads(trust_policy)
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    allowed = False
    for statement in statements:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        named = statement.get("Principal")
        services = named.get("Service", []) if isinstance(named, dict) else []
        services = [services] if isinstance(services, str) else services
        if "sts:AssumeRole" in actions or "sts:*" in actions or "*" in actions:
            if LAMBDA_SERVICE in services or named == "*":
                if statement.get("Effect") == "Deny":
                    return False
                allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


# -- endpoints ----------------------------------------------------------------------------------------------


def _json(status: int, payload: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload)


def _payload(request: Any) -> dict[str, Any]:
    body = request.get_data() if hasattr(request, "get_data") else request.data
    return json.loads(body or b"{}")


def access_key(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import AccessKey

    payload = _payload(request)
    iam, _ = _backends(payload.get("account_id", DEFAULT_ACCOUNT_ID))
    user = iam.get_user(payload["user"])
    user.access_keys = [k for k in user.access_keys if k.access_key_id != payload["access_key_id"]]
    key = AccessKey(user.name, prefix="AKIA", account_id=iam.account_id)
    key.access_key_id, key.secret_access_key = payload["access_key_id"], payload["secret_access_key"]
    user.access_keys.append(key)
    return _json(200, {"user": user.name, "access_key_id": key.access_key_id})


def authorize(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    from moto.core import DEFAULT_ACCOUNT_ID

    payload = _payload(request)
    found = find_principal(payload["access_key_id"], payload.get("account_id", DEFAULT_ACCOUNT_ID))
    if found is None:
        return _json(404, {"message": "unknown access key"})
    allowed = evaluate(found["policies"], payload["action"], payload["resource"])
    return _json(200, {"allowed": allowed, "principal": found["arn"]})


def _role_session(account_id: str, region: str, function: Any) -> tuple[int, dict[str, Any]]:
    """The Lambda service's AssumeRole of the function's execution role: (200, credentials) or (403, why not)."""
    from moto.iam.exceptions import NotFoundException

    iam, sts = _backends(account_id)
    try:
        role = iam.get_role_by_arn(function.role)
    except NotFoundException:
        return 403, {"message": f"the execution role {function.role} does not exist"}
    if not _trusts_lambda(role.assume_role_policy_document):
        return 403, {"message": f"{LAMBDA_SERVICE} is not trusted to assume {function.role}"}
    now = _now()
    session = next(
        (
            s
            for s in reversed(sts.assumed_roles)
            if s.role_arn == function.role
            and s.session_name == function.function_name
            and s.expiration - _RENEW_BEFORE > now
        ),
        None,
    )
    if session is None:
        session = sts.assume_role(region, function.function_name, function.role, None, _SESSION_SECONDS, None)
    return 200, {
        "AccessKeyId": session.access_key_id,
        "SecretAccessKey": session.secret_access_key,
        "SessionToken": session.session_token,
        "Expiration": session.expiration.replace(tzinfo=datetime.UTC).isoformat(),
        "RoleArn": function.role,
    }


def _function(payload: dict[str, Any]) -> tuple[str, str, Any]:
    from moto.awslambda.utils import get_backend  # the Docker-less backend when Lambda runs without Docker
    from moto.core import DEFAULT_ACCOUNT_ID

    account_id, region = payload.get("account_id", DEFAULT_ACCOUNT_ID), payload.get("region", "us-east-1")
    return account_id, region, get_backend(account_id, region).get_function(payload["function_name"])


def function_credentials(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    from moto.awslambda.exceptions import UnknownFunctionException

    payload = _payload(request)
    try:
        account_id, region, function = _function(payload)
    except UnknownFunctionException:
        return _json(404, {"message": f"no function {payload['function_name']}"})
    return _json(*_role_session(account_id, region, function))


def function_context(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """What the Lambda service hands a fresh execution environment of the function, in one answer: its
    configuration as GetFunctionConfiguration describes it (variables, VpcConfig, role) and its execution
    role's session (`Credentials`), or why the service could not assume the role (`CredentialsError`)."""
    from moto.awslambda.exceptions import UnknownFunctionException

    payload = _payload(request)
    try:
        account_id, region, function = _function(payload)
    except UnknownFunctionException:
        return _json(404, {"message": f"no function {payload['function_name']}"})
    status, credentials = _role_session(account_id, region, function)
    answer: dict[str, Any] = {"Configuration": json.loads(json.dumps(function.get_configuration(), default=str))}
    if status == 200:
        answer["Credentials"] = credentials
    else:
        answer["CredentialsError"] = credentials["message"]
    return _json(200, answer)
