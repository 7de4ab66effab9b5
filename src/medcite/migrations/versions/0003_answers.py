"""Saved answers, so that a follow-up question can be read in the light of an earlier answer.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    # One row per answer id (a hash of question, audience, library version and the earlier answer, if any);
    # data is the Answer JSON exactly as `medcite ask --format json` prints it.
    op.execute(
        """
        CREATE TABLE answers (
            answer_id TEXT PRIMARY KEY,
            question TEXT NOT NULL,
            audience TEXT NOT NULL,
            follow_up_of TEXT REFERENCES answers(answer_id),
            data TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX answers_follow_up_of ON answers(follow_up_of)")


def downgrade() -> None:
    op.execute("DROP TABLE answers")
