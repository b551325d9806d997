"""The Aurora stand-in, reached through VelaOps's own login path: endpoint from RDS, credentials from the secret."""

import pytest

from dashboard import aurora
from infra.sandbox.aurora_db import TABLES

pytestmark = pytest.mark.django_db


def test_the_vela_schema_is_there_with_zero_rows(sandbox_environment):
    with aurora.connect(sandbox_environment) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                "AND table_type = 'BASE TABLE' ORDER BY 1"
            )
        ]
        assert sorted(TABLES) == tables
        for table in tables:
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == 0
