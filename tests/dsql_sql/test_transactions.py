"""DSQL's transaction answers and limits as data (dashboard/dsql_sql/transactions.py), and the isolation rule,
without a server."""

import pytest

from dashboard.dsql_sql.classify import statements, violations
from dashboard.dsql_sql.rules import CHECKED, GUIDE
from dashboard.dsql_sql.transactions import (
    AGE_LIMIT,
    ANSWERS,
    DATA_CONFLICT,
    LIMITS,
    ROW_LIMIT,
    SCHEMA_CONFLICT,
    SIZE_LIMIT,
)


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda answer: answer.id)
def test_each_answer_names_its_guide_page_and_the_day_it_was_checked(answer):
    assert answer.source.startswith(GUIDE)
    assert answer.checked == CHECKED
    assert answer.wording == "observed"  # every one is quoted by the guide
    assert answer.message and answer.hint and answer.note


def test_conflicts_are_serialization_failures_with_dsqls_occ_codes():
    assert (DATA_CONFLICT.sqlstate, SCHEMA_CONFLICT.sqlstate) == ("40001", "40001")
    assert DATA_CONFLICT.message.endswith("(OC000)")
    assert SCHEMA_CONFLICT.message.endswith("(OC001)")


def test_the_limits_messages_say_the_limits():
    assert {answer.sqlstate for answer in (ROW_LIMIT, SIZE_LIMIT, AGE_LIMIT)} == {"54000"}
    assert f"{LIMITS.seconds}s" in AGE_LIMIT.message
    assert f"{LIMITS.bytes // 2**20}mb" in SIZE_LIMIT.message
    assert f"{LIMITS.rows:,}" in ROW_LIMIT.hint


@pytest.mark.parametrize(
    ("sql", "level"),
    [
        ("BEGIN ISOLATION LEVEL SERIALIZABLE", "SERIALIZABLE"),
        ("BEGIN READ ONLY, ISOLATION LEVEL READ COMMITTED", "READ COMMITTED"),
        ("START TRANSACTION ISOLATION LEVEL READ UNCOMMITTED", "READ UNCOMMITTED"),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SERIALIZABLE"),
        ("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED", "READ COMMITTED"),
        ("SET default_transaction_isolation = 'serializable'", "SERIALIZABLE"),
        ("SET transaction_isolation TO 'read committed'", "READ COMMITTED"),
    ],
)
def test_isolation_levels_other_than_repeatable_read_break_the_rule(sql, level):
    assert [(v.rule.id, v.detail) for v in violations(sql)] == [("isolation_level", level)]


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN",
        "BEGIN ISOLATION LEVEL REPEATABLE READ",
        "START TRANSACTION READ ONLY",
        "SET TRANSACTION READ ONLY",
        "SET transaction_isolation TO DEFAULT",
        "SET default_transaction_isolation = 'repeatable read'",
    ],
)
def test_repeatable_read_and_other_transaction_options_pass(sql):
    assert violations(sql) == []


def test_commit_and_end_are_where_dsql_judges_a_transaction():
    assert [s.commits for s in statements("COMMIT; END; ROLLBACK; BEGIN")] == [True, True, False, False]
