import pytest
from django.urls import reverse

from dashboard.models import Environment

VALID = {
    "name": "Production",
    "slug": "prod",
    "description": "",
    "region": "eu-west-1",
    "account_id": "210987654321",
    "role_arn": "arn:aws:iam::210987654321:role/ops/VelaOpsOperator",
    "role_external_id": "",
    "aws_endpoint_url": "",
    "cloudformation_stacks": "DatabaseStack,ApiStack",
    "lambda_function_name": "vela-api",
    "api_health_url": "https://api.vela.example.com/health/dsql",
    "aurora_cluster_identifier": "vela-aurora",
    "dynamodb_tables": "vela-users,vela-sessions",
    "aurora_database": "postgres",
    "aurora_sslmode": "require",
    "aurora_host_override": "",
    "dsql_port": "5432",
    "dsql_database": "postgres",
    "dsql_user": "admin",
    "dsql_sslmode": "verify-full",
    "dsql_host_override": "",
}


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def post_add(admin_client, **changes):
    return admin_client.post(reverse("admin:dashboard_environment_add"), {**VALID, **changes})


def test_a_valid_environment_is_saved(admin_client):
    response = post_add(admin_client)
    assert response.status_code == 302, response.context["adminform"].form.errors
    saved = Environment.objects.get(slug="prod")
    assert saved.dynamodb_tables == ["vela-users", "vela-sessions"]
    assert saved.cloudformation_stacks == ["DatabaseStack", "ApiStack"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("region", "us-east-99", "not a known AWS region"),
        ("region", "Frankfurt", "not an AWS region name"),
        ("account_id", "12345", "exactly 12 digits"),
        ("account_id", "12345678901a", "exactly 12 digits"),
        ("role_arn", "arn:aws:iam::210987654321:user/alice", "IAM role ARN"),
        ("role_arn", "VelaOpsOperator", "IAM role ARN"),
        ("dsql_host_override", "dsql.local", "valid IPv4 or IPv6"),
    ],
)
def test_bad_values_give_a_field_error(admin_client, field, value, message):
    response = post_add(admin_client, **{field: value})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert message in " ".join(errors[field])
    assert not Environment.objects.filter(slug="prod").exists()
