"""How failures are described in an attempt's record (the shapes botocore and psycopg raise)."""

import psycopg
import pytest
from botocore.exceptions import ClientError

from dashboard.runbook.worker import _describe_failure


def client_error(code, message, operation):
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"RequestId": "req-123"}}
    return ClientError(response, operation)


def test_access_denied_names_the_refused_iam_action():
    exc = client_error("AccessDeniedException", "User is not authorized", "CreateCluster")
    exc.velaops_service = "dsql"  # set by the step context's AWS wrapper
    error, _ = _describe_failure(exc)
    assert error["iam_action"] == "dsql:CreateCluster"
    assert error["message"].endswith("(refused IAM action: dsql:CreateCluster)")
    assert error["request_id"] == "req-123" and error["operation"] == "CreateCluster"


def test_other_aws_errors_keep_code_message_and_request_id():
    error, _ = _describe_failure(client_error("DBClusterNotFoundFault", "no such cluster", "DescribeDBClusters"))
    assert error == {
        "code": "DBClusterNotFoundFault",
        "message": "no such cluster",
        "request_id": "req-123",
        "operation": "DescribeDBClusters",
    }


@pytest.mark.django_db
def test_database_errors_carry_their_sqlstate():
    with pytest.raises(psycopg.Error) as caught, psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres") as c:
        c.execute("SELECT * FROM velaops_no_such_table")
    error, _ = _describe_failure(caught.value)
    assert error["code"] == "SQL 42P01" and "velaops_no_such_table" in error["message"]


def test_unexpected_exceptions_are_recorded_not_raised():
    error, _ = _describe_failure(KeyError("identifier"))
    assert error == {"code": "InternalError", "message": "KeyError: 'identifier'"}
