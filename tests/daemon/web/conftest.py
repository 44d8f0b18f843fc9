"""PostgreSQL for the overview-across-shards tests: a private server, a database a test."""

from tests.harness.pg_fixtures import pg_server, pg_url  # noqa: F401  # fixtures
