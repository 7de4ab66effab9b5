"""Alembic migrations of the library schema, for SQLite and PostgreSQL (``Store.open`` runs them)."""


def is_postgresql() -> bool:
    """Whether the migration runs on PostgreSQL (else SQLite): the few DDL statements that differ ask this."""
    from alembic import op

    return op.get_bind().dialect.name == "postgresql"
