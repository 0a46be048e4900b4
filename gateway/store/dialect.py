"""What differs between SQLite and PostgreSQL, in one place; every other query is written
once (with ``?`` placeholders) and shared.

The differences: placeholders (``?`` vs ``$n``), the id column, merging JSON, and the text
index (an FTS5 table fed by triggers vs a ``tsvector`` column with a GIN index), including
how a query's terms (:mod:`gateway.store.terms`) become a match expression.
"""

from __future__ import annotations

import re
from functools import lru_cache

from . import terms as T


class Dialect:
    name = ""
    id_column = ""  # an auto-numbered primary key column type

    def sql(self, text: str) -> str:
        """``text`` with this database's placeholders (the database layer calls it on every
        statement; shared SQL is written with ``?``)."""
        return text

    def json_merge(self, column: str) -> str:
        """SQL for ``column`` (JSON text) with the JSON object of the next parameter
        merged into it."""
        raise NotImplementedError

    # --- text index ------------------------------------------------------------------------
    def message_insert(self) -> str:
        raise NotImplementedError

    def terms_param(self, text: str) -> object:
        raise NotImplementedError

    def text_candidates(self) -> str:
        """SQL selecting ``(message id, conversation, text)`` of messages whose terms match
        the first parameter, newest first, with ``id < ?`` and ``LIMIT ?`` after it. The
        conversation filters are ANDed in as ``{where}``."""
        raise NotImplementedError

    def match_param(self, parts: list[str]) -> str:
        raise NotImplementedError


class SQLiteDialect(Dialect):
    name = "sqlite"
    id_column = "INTEGER PRIMARY KEY"

    def json_merge(self, column: str) -> str:
        return f"json_patch({column}, ?)"

    def message_insert(self) -> str:
        # message_fts follows messages through triggers (migration 2)
        return ("INSERT INTO messages (conversation, n, role, author, author_name, text, "
                "cmid, kind, meta, ts, terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (conversation, n) DO NOTHING")

    def terms_param(self, text: str) -> object:
        return T.terms_text(text)

    def text_candidates(self) -> str:
        return ("SELECT m.id, m.conversation, m.text FROM message_fts f "
                "JOIN messages m ON m.id = f.rowid "
                "JOIN conversations c ON c.id = m.conversation "
                "WHERE f.terms MATCH ? AND f.rowid < ? {where} "
                "ORDER BY f.rowid DESC LIMIT ?")

    def match_param(self, parts: list[str]) -> str:
        out = []
        for term, prefix in T.match_terms(parts):
            q = '"' + term.replace('"', '""') + '"'
            out.append(q + ("*" if prefix else ""))
        return " AND ".join(out)


_PLACEHOLDER = re.compile(r"\?")


class PostgresDialect(Dialect):
    name = "postgresql"
    id_column = "BIGSERIAL PRIMARY KEY"

    def sql(self, text: str) -> str:
        return _numbered(text)

    def json_merge(self, column: str) -> str:
        return f"(({column})::jsonb || (?)::jsonb)::text"

    def message_insert(self) -> str:
        return ("INSERT INTO messages (conversation, n, role, author, author_name, text, cmid, "
                "kind, meta, ts, terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "array_to_tsvector((?)::text[])) ON CONFLICT (conversation, n) DO NOTHING")

    def terms_param(self, text: str) -> object:
        return sorted(set(T.index_terms(text)))

    def text_candidates(self) -> str:
        return ("SELECT m.id, m.conversation, m.text FROM messages m "
                "JOIN conversations c ON c.id = m.conversation "
                "WHERE m.terms @@ (?)::tsquery AND m.id < ? {where} "
                "ORDER BY m.id DESC LIMIT ?")

    def match_param(self, parts: list[str]) -> str:
        out = []
        for term, prefix in T.match_terms(parts):
            q = "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"
            out.append(q + (":*" if prefix else ""))
        return " & ".join(out)


@lru_cache(maxsize=512)
def _numbered(text: str) -> str:
    n = 0

    def repl(_m: re.Match) -> str:
        nonlocal n
        n += 1
        return f"${n}"

    return _PLACEHOLDER.sub(repl, text)
