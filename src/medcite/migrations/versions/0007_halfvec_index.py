"""PostgreSQL: HNSW indexes named by their pgvector type, so a library may hold halfvec or vector indexes.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

from medcite.migrations import is_postgresql

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    # The indexes of 0002's time were all 32-bit 'vector' indexes named passage_vectors_hnsw_<model hash>; the
    # store builds the index of the configured type (passage_vectors_<type>_hnsw_<model hash>) when it opens.
    if is_postgresql():
        op.execute(
            "DO $$ DECLARE name text; BEGIN FOR name IN SELECT indexname FROM pg_indexes "
            "WHERE indexname LIKE 'passage_vectors\\_hnsw\\_%' LOOP EXECUTE 'DROP INDEX ' || quote_ident(name); "
            "END LOOP; END $$"
        )


def downgrade() -> None:
    pass
