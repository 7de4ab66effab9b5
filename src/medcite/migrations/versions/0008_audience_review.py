"""Review per audience, approvals from distinct reviewers, and the documents each answer cites (issue 12).

Revision ID: 0008
Revises: 0007

- ``article_reviews``: the review status of each audience's answer (clinician, student, patient), with the reason
  when it needs re-review because a cited document was retracted, replaced or removed.
- ``review_claims``: the reviewers who claimed an audience's answer in its current round (who may approve it).
- ``approvals``: approvals of the current round, one per reviewer, naming the revision approved.
- ``audit_log.audience``: the audience an action was about (None: the whole article, or an account).
- ``users.last_login_at``: the account's last sign-in to the web app (ISO 8601 UTC; None: never).
- ``article_citations``: the documents each audience's answer cites (at its latest revision), so that a change of
  a document finds the articles citing it.

From here on ``articles.status`` only says whether an article is withdrawn ('unpublished') or not ('submitted');
its review status is per audience, in ``article_reviews``. An existing article keeps its status for the audience
its asker chose (the one a reviewer read); the other two audiences start as submitted.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

AUDIENCES = ("clinician", "student", "patient")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE article_reviews (
            article_id INTEGER NOT NULL REFERENCES articles(article_id),
            audience TEXT NOT NULL CHECK (audience IN ('clinician', 'student', 'patient')),
            status TEXT NOT NULL CHECK (status IN
                ('submitted', 'under_review', 'changes_requested', 'approved', 'needs_rereview')),
            reason TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL,
            PRIMARY KEY (article_id, audience)
        )
        """
    )
    op.execute("CREATE INDEX article_reviews_status ON article_reviews(status, updated_at)")
    op.execute(
        """
        CREATE TABLE review_claims (
            article_id INTEGER NOT NULL REFERENCES articles(article_id),
            audience TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (article_id, audience, reviewer)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE approvals (
            article_id INTEGER NOT NULL REFERENCES articles(article_id),
            audience TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            revision INTEGER NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (article_id, audience, reviewer)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE article_citations (
            article_id INTEGER NOT NULL REFERENCES articles(article_id),
            audience TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            PRIMARY KEY (article_id, audience, doc_id)
        )
        """
    )
    op.execute("CREATE INDEX article_citations_doc ON article_citations(doc_id)")
    op.execute("ALTER TABLE audit_log ADD COLUMN audience TEXT")
    op.execute("ALTER TABLE users ADD COLUMN last_login_at TEXT")

    conn = op.get_bind()
    articles = conn.execute(
        sa.text(
            "SELECT a.article_id, a.audience, a.status, a.claimed_by, a.approved_by, a.approved_at, a.updated_at, "
            "a.revision, r.answers FROM articles a JOIN article_revisions r "
            "ON r.article_id = a.article_id AND r.revision = a.revision"
        )
    ).fetchall()
    for article_id, asked_for, status, claimed_by, approved_by, approved_at, updated_at, current, answers in articles:
        for audience in AUDIENCES:
            own = status if audience == asked_for and status != "unpublished" else "submitted"
            conn.execute(
                sa.text(
                    "INSERT INTO article_reviews(article_id, audience, status, updated_at) "
                    "VALUES (:article_id, :audience, :status, :at)"
                ),
                {"article_id": article_id, "audience": audience, "status": own, "at": updated_at},
            )
        if status == "under_review" and claimed_by:
            conn.execute(
                sa.text("INSERT INTO review_claims VALUES (:article_id, :audience, :reviewer, :at)"),
                {"article_id": article_id, "audience": asked_for, "reviewer": claimed_by, "at": updated_at},
            )
        if status == "approved" and approved_by:
            conn.execute(
                sa.text("INSERT INTO approvals VALUES (:article_id, :audience, :reviewer, :revision, :at)"),
                {
                    "article_id": article_id,
                    "audience": asked_for,
                    "reviewer": approved_by,
                    "revision": current,
                    "at": approved_at or updated_at,
                },
            )
        for audience, answer in json.loads(answers).items():
            cited = {ref["passage_id"].rsplit("#", 1)[0] for ref in json.loads(answer).get("references", [])}
            for doc_id in sorted(cited):
                conn.execute(
                    sa.text("INSERT INTO article_citations VALUES (:article_id, :audience, :doc_id)"),
                    {"article_id": article_id, "audience": audience, "doc_id": doc_id},
                )
    op.execute("UPDATE articles SET status = 'submitted' WHERE status <> 'unpublished'")


def downgrade() -> None:
    for table in ("article_citations", "approvals", "review_claims", "article_reviews"):
        op.execute(f"DROP TABLE {table}")
