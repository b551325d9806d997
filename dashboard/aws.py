"""The one way VelaOps talks to AWS: a boto3 session per environment, clients with shared settings,
and AWS errors turned into something a person can read and a database can store."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.loaders import create_loader
from django.conf import settings

if TYPE_CHECKING:
    from dashboard.models import Environment

# Temporary credentials are reused until this close to expiry.
CREDENTIAL_REFRESH_MARGIN = 300
_assumed: dict[tuple[str, str, str, str], tuple[float, dict[str, str]]] = {}
_assumed_lock = threading.Lock()


def client_config(*, timeout: float | None = None, max_attempts: int | None = None) -> Config:
    """VelaOps's client settings; `timeout` (connect and read, s) and `max_attempts` override the settings'."""
    return Config(
        # total_max_attempts counts the first try; botocore's max_attempts would count only retries.
        retries={"mode": "standard", "total_max_attempts": max_attempts or settings.AWS_MAX_ATTEMPTS},
        connect_timeout=timeout or settings.AWS_CONNECT_TIMEOUT,
        read_timeout=timeout or settings.AWS_READ_TIMEOUT,
        user_agent_appid="velaops",
    )


# botocore's data files (service models, endpoints) parsed once per process: every new Session would parse
# each model its clients need again, about 0.15 s of CPU a client. The loader holds files, not credentials.
_LOADER = create_loader()


def _session(**kwargs: Any) -> boto3.Session:
    core = botocore.session.Session()
    core.register_component("data_loader", _LOADER)
    return boto3.Session(botocore_session=core, **kwargs)


def boto3_session(environment: Environment) -> boto3.Session:
    """A session in the environment's region, under its role when one is set (STS AssumeRole)."""
    if not environment.role_arn:
        return _session(region_name=environment.region)
    credentials = _assume_role(environment)
    return _session(
        region_name=environment.region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def client(
    environment: Environment,
    service: str,
    session: boto3.Session | None = None,
    *,
    timeout: float | None = None,
    max_attempts: int | None = None,
) -> Any:
    """A boto3 client for `service` with VelaOps's retry and timeout settings and the environment's endpoint.
    Every client VelaOps makes comes from here (the probes cache theirs, dashboard/monitoring/probes/clients.py)."""
    session = session or boto3_session(environment)
    return session.client(
        service,
        endpoint_url=environment.aws_endpoint_url or None,
        config=client_config(timeout=timeout, max_attempts=max_attempts),
    )


def _assume_role(environment: Environment) -> dict[str, str]:
    key = (environment.role_arn, environment.role_external_id, environment.region, environment.aws_endpoint_url)
    with _assumed_lock:
        cached = _assumed.get(key)
        if cached and cached[0] - CREDENTIAL_REFRESH_MARGIN > time.time():
            return cached[1]
    sts = _session(region_name=environment.region).client(
        "sts", endpoint_url=environment.aws_endpoint_url or None, config=client_config()
    )
    kwargs = {"RoleArn": environment.role_arn, "RoleSessionName": f"velaops-{environment.slug}"[:64]}
    if environment.role_external_id:
        kwargs["ExternalId"] = environment.role_external_id
    credentials = sts.assume_role(**kwargs)["Credentials"]
    with _assumed_lock:
        _assumed[key] = (credentials["Expiration"].timestamp(), credentials)
    return credentials


@dataclass(frozen=True)
class AwsError:
    """An AWS failure as shown to people and stored in records: never a traceback, never credentials."""

    code: str
    message: str
    request_id: str = ""
    operation: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "request_id": self.request_id, "operation": self.operation}


AWS_EXCEPTIONS = (ClientError, BotoCoreError)


def describe_error(exc: Exception) -> AwsError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        return AwsError(
            code=str(error.get("Code") or "ClientError"),
            message=str(error.get("Message") or exc),
            request_id=str(meta.get("RequestId") or ""),
            operation=getattr(exc, "operation_name", "") or "",
        )
    return AwsError(code=type(exc).__name__, message=str(exc))
