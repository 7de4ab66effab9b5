"""Passage vectors (dense retrieval), vocabulary (query expansion) and a library version counter.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    # One row per (embedding model, passage): the source of truth for dense search. The ANN index file
    # beside the library is rebuilt from this table whenever library_version has moved on.
    op.execute(
        """
        CREATE TABLE passage_vectors (
            model TEXT NOT NULL,
            passage_rowid INTEGER NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (model, passage_rowid)
        )
        """
    )
    op.execute("CREATE INDEX passage_vectors_rowid ON passage_vectors(passage_rowid)")
    op.execute(
        """
        CREATE TABLE vocabulary (
            concept TEXT NOT NULL,
            term TEXT NOT NULL,
            source TEXT NOT NULL,
            PRIMARY KEY (concept, term)
        )
        """
    )
    op.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    op.execute("INSERT INTO meta(key, value) VALUES ('library_version', '0')")


def downgrade() -> None:
    op.execute("DROP TABLE meta")
    op.execute("DROP TABLE vocabulary")
    op.execute("DROP TABLE passage_vectors")
