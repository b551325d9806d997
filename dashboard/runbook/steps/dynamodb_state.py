"""The DynamoDB facts that must not change: read for the baseline and again for the comparison."""

from __future__ import annotations

from dashboard.runbook.context import StepContext


def table_facts(ctx: StepContext, name: str) -> dict:
    table = ctx.aws("dynamodb").describe_table(TableName=name)["Table"]
    stream = table.get("StreamSpecification") or {"StreamEnabled": False}
    return {
        "status": table["TableStatus"],
        "key_schema": sorted((k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]),
        "billing_mode": (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED"),
        "stream": {"enabled": bool(stream.get("StreamEnabled")), "view_type": stream.get("StreamViewType", "")},
        "item_count": exact_item_count(ctx, name),
    }


def exact_item_count(ctx: StepContext, name: str) -> int:
    # DescribeTable's ItemCount lags by up to six hours; a COUNT scan is exact (Vela's tables are small).
    total, start_key = 0, None
    while True:
        kwargs = {"TableName": name, "Select": "COUNT"}
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        page = ctx.aws("dynamodb").scan(**kwargs)
        total += page["Count"]
        start_key = page.get("LastEvaluatedKey")
        if not start_key:
            return total


def dynamodb_snapshot(ctx: StepContext) -> dict[str, dict]:
    facts = {}
    for name in ctx.environment.dynamodb_tables:
        facts[name] = table_facts(ctx, name)
        ctx.log(f"{name}: {facts[name]['status']}, {facts[name]['item_count']} items, {facts[name]['billing_mode']}")
    return facts
