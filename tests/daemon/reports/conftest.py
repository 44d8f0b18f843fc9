"""PostgreSQL for the report tests here: a private server, a database a test."""

from tests.harness.pg_fixtures import pg_server, pg_url  # noqa: F401  # fixtures
