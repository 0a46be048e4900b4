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
        the first parameter, newest first, with ``id < ?``, ``id >= ?`` (the window) and
        ``LIMIT ?`` after it. The conversation filters are ANDed in as ``{where}``."""
        raise NotImplementedError

    def match_param(self, parts: list[str], room: str | None = None) -> str:
        """The index lookup for ``parts`` (and, when given, the room's term)."""
        raise NotImplementedError

    def prefilter(self, parts: list[str]) -> tuple[str, list[object]]:
        """Extra SQL conditions on ``m`` (ANDed before the filters) and their parameters:
        what the index lookup left out, checked by the database rather than in Python."""
        return "", []

    def room_term_sql(self, column: str) -> str:
        """SQL computing :func:`gateway.store.terms.room_term` of ``column``."""
        raise NotImplementedError


class SQLiteDialect(Dialect):
    name = "sqlite"
    id_column = "INTEGER PRIMARY KEY"

    def json_merge(self, column: str) -> str:
        return f"json_patch({column}, ?)"

    def room_term_sql(self, column: str) -> str:
        return f"'{T.ROOM_PREFIX}' || lower(hex({column}))"

    def message_insert(self) -> str:
        # message_fts follows messages through triggers (migration 2); the last parameter
        # is the conversation again, for its room's term
        return ("INSERT INTO messages (conversation, n, role, author, author_name, text, "
                "cmid, kind, meta, ts, terms, scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                f"COALESCE((SELECT {self.room_term_sql('room')} FROM conversations "
                "WHERE id = ?), '')) ON CONFLICT (conversation, n) DO NOTHING")

    def terms_param(self, text: str) -> object:
        return T.terms_text(text)

    def text_candidates(self) -> str:
        return ("SELECT m.id, m.conversation, m.text FROM message_fts f "
                "JOIN messages m ON m.id = f.rowid "
                "JOIN conversations c ON c.id = m.conversation "
                "WHERE message_fts MATCH ? AND f.rowid < ? AND f.rowid >= ? {where} "
                "ORDER BY f.rowid DESC LIMIT ?")

    def match_param(self, parts: list[str], room: str | None = None) -> str:
        out = []
        # the FTS5 table keeps prefix indexes of 2 and 3 characters: a short prefix is one
        # lookup here, so it narrows the candidates too
        for term, prefix in T.match_terms(parts, min_prefix=2):
            q = '"' + term.replace('"', '""') + '"'
            out.append("terms : " + q + ("*" if prefix else ""))
        if room is not None:
            out.append(f'scope : "{T.room_term(room)}"')
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
                f"{self.terms_sql()}) ON CONFLICT (conversation, n) DO NOTHING")

    def room_term_sql(self, column: str) -> str:
        return f"'{T.ROOM_PREFIX}' || encode(convert_to({column}, 'UTF8'), 'hex')"

    def terms_sql(self) -> str:
        """The tsvector of a terms array parameter plus the room term of the conversation
        named by the next parameter (none when the conversation is unknown)."""
        return (f"array_to_tsvector(array_remove((?)::text[] || (SELECT "
                f"{self.room_term_sql('room')} FROM conversations WHERE id = ?), NULL))")

    def terms_param(self, text: str) -> object:
        # plus a "~xx" lexeme per word for its first two letters: PostgreSQL's own prefix
        # lookup of a two-letter prefix expands to every word that starts with it (every
        # order id for "LD"); this is one exact lookup instead, like SQLite's prefix index
        terms = T.index_terms(text)
        return sorted(set(terms) | {T.SHORT_PREFIX + t[:2] for t in terms
                                    if len(t) >= 2 and t.isascii()})

    def text_candidates(self) -> str:
        return ("SELECT m.id, m.conversation, m.text FROM messages m "
                "JOIN conversations c ON c.id = m.conversation "
                "WHERE m.terms @@ (?)::tsquery AND m.id < ? AND m.id >= ? {where} "
                "ORDER BY m.id DESC LIMIT ?")

    def match_param(self, parts: list[str], room: str | None = None) -> str:
        out = []
        for term, prefix in T.match_terms(parts, min_prefix=2):
            if prefix and len(term) == 2 and term.isascii():
                term, prefix = T.SHORT_PREFIX + term, False  # its "~xx" lexeme
            q = "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"
            out.append(q + (":*" if prefix else ""))
        if room is not None:
            out.append(f"'{T.room_term(room)}'")
        return " & ".join(out)

    def prefilter(self, parts: list[str]) -> tuple[str, list[object]]:
        # a short prefix left out of the lookup (``退款 LD``): checked on the text in the
        # database, so the candidates that come back are few (1.1 s → see performance.md)
        short = T.dropped_prefixes(parts, min_prefix=2)
        sql = "".join(" AND strpos(lower(normalize(m.text, NFKC)), ?) > 0" for _ in short)
        return sql, list(short)


@lru_cache(maxsize=512)
def _numbered(text: str) -> str:
    n = 0

    def repl(_m: re.Match) -> str:
        nonlocal n
        n += 1
        return f"${n}"

    return _PLACEHOLDER.sub(repl, text)
