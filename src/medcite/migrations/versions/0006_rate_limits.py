"""Rate-limit hits kept in the library, so that every web worker counts the same requests.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from medcite.migrations import is_postgresql

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    # One row per counted request: the bucket ('ask:<client address>') and when (Unix time, seconds). A moving
    # window counts the bucket's rows newer than the window; older rows are deleted as the window moves.
    seconds = "DOUBLE PRECISION" if is_postgresql() else "REAL"
    op.execute(f"CREATE TABLE web_rate_hits (bucket TEXT NOT NULL, at {seconds} NOT NULL)")
    op.execute("CREATE INDEX web_rate_hits_bucket ON web_rate_hits(bucket, at)")


def downgrade() -> None:
    op.execute("DROP TABLE web_rate_hits")
