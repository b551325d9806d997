from __future__ import annotations

import time

import boto3


def aws(sandbox, service: str):
    """A plain boto3 client on the sandbox's moto, as a test's independent witness."""
    return boto3.client(service, region_name=sandbox.config.region, endpoint_url=sandbox.config.moto_url)


def create_active_dsql_cluster(sandbox, timeout: float = 15) -> dict:
    dsql = aws(sandbox, "dsql")
    cluster = dsql.create_cluster(deletionProtectionEnabled=False, tags={"test": "sandbox"})
    deadline = time.monotonic() + timeout
    while dsql.get_cluster(identifier=cluster["identifier"])["status"] != "ACTIVE":
        assert time.monotonic() < deadline, "cluster never became ACTIVE"
        time.sleep(0.2)
    return dsql.get_cluster(identifier=cluster["identifier"])
