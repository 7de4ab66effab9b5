"""Alembic environment for the medcite library file.

medcite runs migrations programmatically (``Store.open``); the connection is
passed in ``config.attributes["connection"]``, so no alembic.ini is needed.
"""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
