"""Articles with revisions, reviewer accounts, API tokens and an append-only audit log (the web app).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE users (
            user_id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('reviewer', 'editor', 'admin')),
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """
    )
    # Only a SHA-256 of each token is kept; the token itself is shown once.
    op.execute(
        """
        CREATE TABLE api_tokens (
            token_sha256 TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
            created_at TEXT NOT NULL
        )
        """
    )
    # The question is stored scrubbed; redactions lists the identifier kinds removed (JSON list).
    op.execute(
        """
        CREATE TABLE articles (
            article_id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL,
            question TEXT NOT NULL,
            audience TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN
                ('submitted', 'under_review', 'changes_requested', 'approved', 'unpublished')),
            revision INTEGER NOT NULL,
            thread_id INTEGER NOT NULL,
            follow_up_of INTEGER REFERENCES articles(article_id),
            redactions TEXT NOT NULL DEFAULT '[]',
            claimed_by TEXT,
            approved_by TEXT,
            approved_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX articles_status ON articles(status, updated_at)")
    op.execute("CREATE INDEX articles_thread ON articles(thread_id, article_id)")
    # answers: JSON object audience -> Answer JSON (the `medcite ask --format json` contract).
    op.execute(
        """
        CREATE TABLE article_revisions (
            article_id INTEGER NOT NULL REFERENCES articles(article_id),
            revision INTEGER NOT NULL,
            answers TEXT NOT NULL,
            author TEXT,
            note TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            PRIMARY KEY (article_id, revision)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE audit_log (
            entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT,
            article_id INTEGER,
            action TEXT NOT NULL,
            from_status TEXT,
            to_status TEXT,
            revision INTEGER,
            comment TEXT NOT NULL DEFAULT ''
        )
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
    )
    op.execute("CREATE TABLE web_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)")


def downgrade() -> None:
    for table in ("web_secrets", "audit_log", "article_revisions", "articles", "api_tokens", "users"):
        op.execute(f"DROP TABLE {table}")
