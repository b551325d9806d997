"""Logging in to the Aurora PostgreSQL cluster the way an operator would: endpoint from the RDS API,
credentials from the Secrets Manager secret, TLS per the environment's options."""

from __future__ import annotations

import json

import boto3
import psycopg

from dashboard.aws import client
from dashboard.models import Environment

CONNECT_TIMEOUT = 10


def connect(environment: Environment, session: boto3.Session | None = None) -> psycopg.Connection:
    rds = client(environment, "rds", session)
    cluster = rds.describe_db_clusters(DBClusterIdentifier=environment.aurora_cluster_identifier)["DBClusters"][0]
    secret = json.loads(
        client(environment, "secretsmanager", session).get_secret_value(SecretId=environment.aurora_secret_id)[
            "SecretString"
        ]
    )
    kwargs = {
        "host": cluster["Endpoint"],
        "port": cluster.get("Port") or 5432,
        "dbname": secret.get("dbname") or environment.aurora_database,
        "user": secret["username"],
        "password": secret["password"],
        "sslmode": environment.aurora_sslmode,
        "connect_timeout": CONNECT_TIMEOUT,
        "application_name": "velaops",
        "autocommit": True,
    }
    if environment.aurora_host_override:
        kwargs["hostaddr"] = environment.aurora_host_override
    return psycopg.connect(**kwargs)
