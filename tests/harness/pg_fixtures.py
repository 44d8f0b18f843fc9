"""pytest fixtures: a private PostgreSQL server for the session (tests/harness/postgres.py),
a database a test. A conftest imports them from here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.postgres import Postgres, fresh_database, server_fixture


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Postgres]:
    yield from server_fixture()


@pytest.fixture
def pg_url(pg_server: Postgres) -> str:
    """A new empty database of this test's own."""
    return fresh_database(pg_server)
