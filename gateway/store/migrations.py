"""The schema, as numbered migrations. A database records the versions it has in
``schema_version``; opening a store applies the missing ones in order, each in one
transaction with its version row, so a crash mid-migration leaves the previous version.

Never edit a released migration: add the next number. A database newer than this build
(a downgrade) is refused rather than guessed at.

* 1 ``base``: conversations, messages, queue, assignments (and every agent a conversation
  ever had), agents' settings, room counters, orders, workspace records, erasure tombstones.
* 2 ``search``: the text index over messages (terms column; SQLite FTS5 table kept by
  triggers, PostgreSQL ``tsvector`` with a GIN index), filled for the messages already there.
* 3 ``accounts``: staff accounts (Argon2 hashes, roles, revocation epoch), sign-in sessions
  (hashed ids), the gateway's signing keys, shops and their viewer-identity secrets, and
  sign-in failures (throttling). :mod:`gateway.store.accounts` reads and writes them.
* 4 ``erase_requests``: viewers erased by ``livedesk erase`` that the running gateway has
  not yet removed from its live state (it polls the table and deletes each row once done);
  ``records.expires_at``, so a restart restores a record with its TTL.
* 5 ``archive``: where the multi-node archiver has got to in each Redis change stream, and
  the fencing number of the last archiver that wrote (``gateway/archiver.py``); both are
  updated in the transaction that writes the entries, so a crash never re-applies or skips.
* 6 ``shop_anonymous``: ``shops.anonymous``, whether a shop's embedded widget lets viewers
  without the shop's identity in (anonymous viewers, docs/embedding.md). 0 by default.
  (6 is another change's number.)
* 8 ``attachments``: photos, call stills and call recordings of conversations
  (``gateway/attachments/``): the record's columns, and the bytes (``BLOB``/``bytea``) when
  the attachments are kept in the store (``attachment_storage=database``, the multi-node
  choice); erased with the viewer and swept with the conversation (docs/storage.md).
"""

from __future__ import annotations

from dataclasses import dataclass

# Timestamps are seconds since the epoch (DOUBLE PRECISION: REAL affinity in SQLite); JSON
# is stored as text in both databases; booleans as 0/1.
_BASE: tuple[str, ...] = (
    """CREATE TABLE conversations (
        id TEXT PRIMARY KEY, room TEXT NOT NULL, viewer TEXT NOT NULL,
        viewer_name TEXT NOT NULL DEFAULT '', viewer_nickname TEXT,
        state TEXT NOT NULL DEFAULT 'bot', agent TEXT, agent_name TEXT,
        opened_at DOUBLE PRECISION NOT NULL, escalated_at DOUBLE PRECISION,
        assigned_at DOUBLE PRECISION, first_agent_reply_at DOUBLE PRECISION,
        resolved_at DOUBLE PRECISION, resolved_by TEXT, escalation_reason TEXT, mood TEXT,
        extra TEXT NOT NULL DEFAULT '{{}}', updated_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX conversations_viewer ON conversations (viewer, opened_at)",
    "CREATE INDEX conversations_agent ON conversations (agent, opened_at)",
    "CREATE INDEX conversations_room ON conversations (room, opened_at)",
    "CREATE INDEX conversations_opened ON conversations (opened_at)",
    "CREATE INDEX conversations_state ON conversations (state, resolved_at)",
    """CREATE TABLE messages (
        id {id}, conversation TEXT NOT NULL, n INTEGER NOT NULL, role TEXT NOT NULL,
        author TEXT NOT NULL, author_name TEXT NOT NULL DEFAULT '', text TEXT NOT NULL,
        cmid TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL DEFAULT '',
        meta TEXT NOT NULL DEFAULT '{{}}', ts DOUBLE PRECISION NOT NULL,
        UNIQUE (conversation, n))""",
    """CREATE TABLE queue (
        conversation TEXT PRIMARY KEY, since DOUBLE PRECISION NOT NULL,
        pos DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE assignments (
        conversation TEXT PRIMARY KEY, agent TEXT NOT NULL, at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE handled (
        conversation TEXT NOT NULL, agent TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (conversation, agent))""",
    "CREATE INDEX handled_agent ON handled (agent)",
    """CREATE TABLE agents (
        "user" TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
        capacity INTEGER NOT NULL, paused INTEGER NOT NULL DEFAULT 0,
        since DOUBLE PRECISION NOT NULL, last_assigned DOUBLE PRECISION NOT NULL DEFAULT 0)""",
    """CREATE TABLE room_stock (
        room TEXT NOT NULL, sku TEXT NOT NULL, stock INTEGER NOT NULL,
        at DOUBLE PRECISION NOT NULL, PRIMARY KEY (room, sku))""",
    """CREATE TABLE room_gifts (
        room TEXT NOT NULL, promotion TEXT NOT NULL, claimed INTEGER NOT NULL,
        at DOUBLE PRECISION NOT NULL, PRIMARY KEY (room, promotion))""",
    """CREATE TABLE orders (
        room TEXT NOT NULL, order_id TEXT NOT NULL, viewer TEXT NOT NULL, sku TEXT NOT NULL,
        qty INTEGER NOT NULL, body TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (room, order_id))""",
    "CREATE INDEX orders_order_id ON orders (order_id)",
    "CREATE INDEX orders_viewer ON orders (viewer, room)",
    "CREATE INDEX orders_at ON orders (at)",
    """CREATE TABLE records (
        namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        viewer TEXT, conversation TEXT, audit INTEGER NOT NULL DEFAULT 0,
        live INTEGER NOT NULL DEFAULT 1, updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (namespace, key))""",
    "CREATE INDEX records_viewer ON records (viewer)",
    "CREATE INDEX records_conversation ON records (conversation)",
    "CREATE INDEX records_updated ON records (audit, updated_at)",
    """CREATE TABLE tombstones (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
        by_role TEXT NOT NULL, counts TEXT NOT NULL)""",
    "CREATE INDEX tombstones_at ON tombstones (at)",
)

_SEARCH: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "ALTER TABLE messages ADD COLUMN terms TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE messages ADD COLUMN scope TEXT NOT NULL DEFAULT ''",  # the room's term
        # external content: the terms live once, in messages; the index follows by trigger
        "CREATE VIRTUAL TABLE message_fts USING fts5 (terms, scope, content='messages', "
        "content_rowid='id', tokenize='unicode61 remove_diacritics 0', prefix='2 3')",
        """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
             INSERT INTO message_fts (rowid, terms, scope)
             VALUES (new.id, new.terms, new.scope); END""",
        """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
             INSERT INTO message_fts (message_fts, rowid, terms, scope)
             VALUES ('delete', old.id, old.terms, old.scope); END""",
    ),
    "postgresql": (
        "ALTER TABLE messages ADD COLUMN terms tsvector",
    ),
}
_SEARCH_AFTER: dict[str, tuple[str, ...]] = {
    "sqlite": ("INSERT INTO message_fts (message_fts) VALUES ('rebuild')",),
    # a small pending list: GIN's fast-update list is scanned by every search until it is
    # merged, and at the default 4 MB that made searches 10-40 ms slower after a burst of
    # writes (measured); 256 kB keeps the merge frequent and cheap
    "postgresql": ("CREATE INDEX messages_terms ON messages USING gin (terms) "
                   "WITH (gin_pending_list_limit = 256)",),
}

# the archiver's position and fence (docs/storage.md#multi-node-the-archiver): one row per
# Redis stream it copies, one fence row (the highest fencing number that has written)
_ARCHIVE: tuple[str, ...] = (
    """CREATE TABLE archive_cursor (
        stream TEXT PRIMARY KEY, last_id TEXT NOT NULL, s BIGINT NOT NULL,
        fence BIGINT NOT NULL, at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE archive_fence (
        id INTEGER PRIMARY KEY, fence BIGINT NOT NULL, holder TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL)""",
    "INSERT INTO archive_fence (id, fence, holder, at) VALUES (1, 0, '', 0)",
)


# A host's edit of a first-N gift's quota (its limit, and whether it runs) reaches the store
# with the room's counters, so a restart or a repopulated Redis gives the same gifts out.
_GIFT_QUOTAS: tuple[str, ...] = (
    "ALTER TABLE room_gifts ADD COLUMN quota INTEGER",
    "ALTER TABLE room_gifts ADD COLUMN active INTEGER",
)


# Staff accounts and what sign-in needs, shared by every node (docs/accounts.md). JSON lists
# as text; ``epoch`` grows when an account is disabled, changes roles or its password, so
# every token minted before is refused.
_ACCOUNTS: tuple[str, ...] = (
    """CREATE TABLE accounts (
        id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', roles TEXT NOT NULL,
        rooms TEXT NOT NULL DEFAULT '[]', capacity INTEGER, max_compensation DOUBLE PRECISION,
        skills TEXT NOT NULL DEFAULT '[]', disabled INTEGER NOT NULL DEFAULT 0,
        password_hash TEXT NOT NULL, epoch INTEGER NOT NULL DEFAULT 1,
        created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE auth_sessions (
        id_hash TEXT PRIMARY KEY, ref TEXT NOT NULL UNIQUE, account TEXT NOT NULL,
        epoch INTEGER NOT NULL, created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION)""",
    "CREATE INDEX auth_sessions_account ON auth_sessions (account)",
    "CREATE INDEX auth_sessions_revoked ON auth_sessions (revoked_at)",
    "CREATE INDEX auth_sessions_expires ON auth_sessions (expires_at)",
    """CREATE TABLE auth_keys (
        kid TEXT PRIMARY KEY, alg TEXT NOT NULL, private_key TEXT NOT NULL,
        public_x TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
        retired_at DOUBLE PRECISION, expires_at DOUBLE PRECISION)""",
    """CREATE TABLE shops (
        id TEXT PRIMARY KEY, rooms TEXT NOT NULL, origins TEXT NOT NULL DEFAULT '[]',
        secret TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE login_failures (
        key TEXT PRIMARY KEY, failures INTEGER NOT NULL, first_at DOUBLE PRECISION NOT NULL,
        locked_until DOUBLE PRECISION NOT NULL DEFAULT 0)""",
)

_ERASE_REQUESTS = (
    """CREATE TABLE erase_requests (
        viewer TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL)""",
    # when the live state forgets a record (its TTL): a restart restores it with it
    "ALTER TABLE records ADD COLUMN expires_at DOUBLE PRECISION",
)

_SHOP_ANONYMOUS = ("ALTER TABLE shops ADD COLUMN anonymous INTEGER NOT NULL DEFAULT 0",)



def _attachments(blob: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE attachments (
            id TEXT PRIMARY KEY, conversation TEXT NOT NULL, viewer TEXT NOT NULL,
            uploader TEXT NOT NULL, uploader_role TEXT NOT NULL, kind TEXT NOT NULL,
            content_type TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
            bytes BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            source TEXT NOT NULL, taken_at DOUBLE PRECISION, thumb_type TEXT,
            meta TEXT NOT NULL DEFAULT '{{{{}}}}', data {blob}, thumb {blob})""",
        "CREATE INDEX attachments_conversation ON attachments (conversation)",
        "CREATE INDEX attachments_viewer ON attachments (viewer)",
        "CREATE INDEX attachments_uploader ON attachments (uploader)",
    )


_ATTACHMENTS = {"sqlite": _attachments("BLOB"), "postgresql": _attachments("BYTEA")}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    ddl: dict[str, tuple[str, ...]]  # dialect name → statements ({id}: the id column type)
    backfill_terms: bool = False  # compute message terms for existing rows, between ddl/after
    after: dict[str, tuple[str, ...]] | None = None


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "base", {"sqlite": _BASE, "postgresql": _BASE}),
    Migration(2, "search", _SEARCH, backfill_terms=True, after=_SEARCH_AFTER),
    Migration(3, "accounts", {"sqlite": _ACCOUNTS, "postgresql": _ACCOUNTS}),
    Migration(4, "erase_requests", {"sqlite": _ERASE_REQUESTS, "postgresql": _ERASE_REQUESTS}),
    Migration(5, "archive", {"sqlite": _ARCHIVE, "postgresql": _ARCHIVE}),
    Migration(6, "shop_anonymous", {"sqlite": _SHOP_ANONYMOUS, "postgresql": _SHOP_ANONYMOUS}),
    Migration(7, "gift_quotas", {"sqlite": _GIFT_QUOTAS, "postgresql": _GIFT_QUOTAS}),
    Migration(8, "attachments", _ATTACHMENTS),
)
LATEST = MIGRATIONS[-1].version

VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                 "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")


class SchemaTooNew(RuntimeError):
    pass


def to_apply(have: int, target: int) -> list[Migration]:
    if have > LATEST:
        raise SchemaTooNew(f"the database has schema version {have}, newer than this build "
                           f"knows ({LATEST}); run a newer LiveDesk or restore a backup")
    return [m for m in MIGRATIONS if have < m.version <= target]


def statements(m: Migration, dialect: str, id_column: str) -> tuple[list[str], list[str]]:
    before = [s.format(id=id_column) for s in m.ddl[dialect]]
    after = [s.format(id=id_column) for s in (m.after or {}).get(dialect, ())]
    return before, after
