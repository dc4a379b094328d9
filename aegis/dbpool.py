"""The database connection pool of the web server (settings: DATABASE_POOL_OPTIONS, enabled by
aegis/asgi.py): what a connection is reset to when it goes back to the pool.

Imported by the settings: no Django imports here.
"""

from __future__ import annotations


def reset_session(connection) -> None:
    """Run by psycopg's pool when a connection is returned, before anyone borrows it again: the
    server's default search_path (the public schema), so that no tenant's schema can outlive the
    request that chose it, whatever the next borrower does first. Only the search_path: the time
    zone Django set when the connection was opened must stay."""
    connection.autocommit = True  # idle here: the pool has ended any transaction
    connection.execute("RESET search_path")
