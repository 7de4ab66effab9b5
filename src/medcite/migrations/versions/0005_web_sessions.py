"""Server-side web sessions, so signing out or a password reset ends a session for good.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    # Only a SHA-256 of each session id is kept; the id itself travels in the signed cookie.
    op.execute(
        """
        CREATE TABLE web_sessions (
            session_sha256 TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
            created_at TEXT NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX web_sessions_user ON web_sessions(user_id)")


def downgrade() -> None:
    op.execute("DROP TABLE web_sessions")
