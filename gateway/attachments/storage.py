"""Where attachments are kept, behind one interface.

* :class:`LocalAttachmentStorage`: files under ``<data_dir>/attachments`` — the single-node
  default. Each attachment is three files named by its random id (``.bin``, ``.thumb``,
  ``.json`` with its record) in a directory per conversation (named by a hash of the
  conversation id, never by anything a client sent).
* :class:`DatabaseAttachmentStorage`: the durable store's ``attachments`` table (migration
  8: the record's columns and the bytes as ``BLOB``/``bytea``) — what several nodes share
  when the store is PostgreSQL.

An S3-compatible object store is not built (yet): it would be a third implementation of
:class:`AttachmentStorage`; nothing else would change.

Retention and erasure follow the durable store's: an attachment lives as long as its
conversation's row in the store. The database implementation is erased in the store's own
erasure transaction and swept with its conversations (``gateway/store/store.py``); both
implementations also drop, in :meth:`AttachmentStorage.sweep`, attachments whose
conversation the store no longer has, once older than the storage's ``orphan_grace_s``:
on one node (``local``) every conversation is in the store before anyone can upload to it,
so two minutes is plenty; the ``database`` storage serves several nodes, whose conversations
reach PostgreSQL through the archiver (~1 s, longer while PostgreSQL is away), so an hour.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .records import Attachment, valid_id

Exists = Callable[[str], Awaitable[bool]]  # does the store still have this conversation?


class AttachmentStorage(abc.ABC):
    """Keeps processed attachments: the record, the full bytes and the thumbnail."""

    name = ""
    orphan_grace_s = 3600.0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @abc.abstractmethod
    async def put(self, rec: Attachment, data: bytes, thumb: bytes | None) -> None: ...

    async def put_file(self, rec: Attachment, path: Path) -> None:
        """Store a file made elsewhere (a call recording, up to ``recording_max_s`` long):
        by default its bytes, read off the loop; the local storage moves the file instead
        of holding it in memory."""
        data = await asyncio.get_running_loop().run_in_executor(None, path.read_bytes)
        await self.put(rec, data, None)

    @abc.abstractmethod
    async def get(self, attachment_id: str) -> Attachment | None: ...

    @abc.abstractmethod
    async def read(self, attachment_id: str, thumb: bool = False) -> bytes | None: ...

    @abc.abstractmethod
    async def usage(self, uploader: str) -> int:
        """Bytes stored for attachments ``uploader`` uploaded (the per-user total limit)."""

    @abc.abstractmethod
    async def delete(self, ids: list[str]) -> int: ...

    @abc.abstractmethod
    async def sweep(self, exists: Exists, now: float | None = None) -> int:
        """Delete attachments whose conversation the store no longer has; returns how many."""


def _record(d: dict) -> Attachment:
    names = {f.name for f in dataclasses.fields(Attachment)}
    return Attachment(**{k: v for k, v in d.items() if k in names})


class LocalAttachmentStorage(AttachmentStorage):
    """Files in a directory; all file I/O in a small thread pool."""

    name = "local"
    orphan_grace_s = 120.0

    def __init__(self, root: Path):
        self.root = Path(root)
        self._io = ThreadPoolExecutor(2, thread_name_prefix="attachments-io")
        self._usage: dict[str, int] | None = None
        self._where: dict[str, Path] = {}

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    async def start(self) -> None:
        await self._run(self._scan)

    async def close(self) -> None:
        self._io.shutdown(wait=True)

    def _dir(self, conversation: str) -> Path:
        return self.root / hashlib.sha256(conversation.encode()).hexdigest()[:32]

    def _scan(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        usage: dict[str, int] = {}
        for meta in self.root.glob("*/*.json"):
            try:
                rec = _record(json.loads(meta.read_text("utf-8")))
            except (OSError, ValueError, TypeError):
                continue
            self._where[rec.id] = meta.parent
            usage[rec.uploader] = usage.get(rec.uploader, 0) + rec.bytes
        self._usage = usage

    def _put(self, rec: Attachment, data: bytes, thumb: bytes | None) -> None:
        d = self._dir(rec.conversation)
        d.mkdir(parents=True, exist_ok=True)
        _write(d / f"{rec.id}.bin", data)
        if thumb is not None:
            _write(d / f"{rec.id}.thumb", thumb)
        # the record last: an attachment exists once its record does
        _write(d / f"{rec.id}.json", json.dumps(dataclasses.asdict(rec)).encode())
        self._where[rec.id] = d

    async def put(self, rec: Attachment, data: bytes, thumb: bytes | None) -> None:
        await self._run(self._put, rec, data, thumb)
        if self._usage is not None:
            self._usage[rec.uploader] = self._usage.get(rec.uploader, 0) + rec.bytes

    def _put_file(self, rec: Attachment, path: Path) -> None:
        d = self._dir(rec.conversation)
        d.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), d / f"{rec.id}.bin")
        _write(d / f"{rec.id}.json", json.dumps(dataclasses.asdict(rec)).encode())
        self._where[rec.id] = d

    async def put_file(self, rec: Attachment, path: Path) -> None:
        await self._run(self._put_file, rec, path)
        if self._usage is not None:
            self._usage[rec.uploader] = self._usage.get(rec.uploader, 0) + rec.bytes

    def _file(self, attachment_id: str, ext: str) -> Path | None:
        d = self._where.get(attachment_id)
        return None if d is None or not valid_id(attachment_id) else d / f"{attachment_id}{ext}"

    def _read(self, p: Path) -> bytes | None:
        try:
            return p.read_bytes()
        except FileNotFoundError:
            return None

    async def get(self, attachment_id: str) -> Attachment | None:
        p = self._file(attachment_id, ".json")
        raw = None if p is None else await self._run(self._read, p)
        return None if raw is None else _record(json.loads(raw))

    async def read(self, attachment_id: str, thumb: bool = False) -> bytes | None:
        p = self._file(attachment_id, ".thumb" if thumb else ".bin")
        return None if p is None else await self._run(self._read, p)

    async def usage(self, uploader: str) -> int:
        if self._usage is None:
            await self._run(self._scan)
        assert self._usage is not None
        return self._usage.get(uploader, 0)

    def _delete(self, ids: list[str]) -> list[Attachment]:
        gone = []
        for i in ids:
            d = self._where.pop(i, None)
            if d is None:
                continue
            meta = d / f"{i}.json"
            try:
                gone.append(_record(json.loads(meta.read_text("utf-8"))))
            except (OSError, ValueError):
                pass
            for ext in (".json", ".bin", ".thumb"):
                (d / f"{i}{ext}").unlink(missing_ok=True)
            try:
                d.rmdir()  # only when empty
            except OSError:
                pass
        return gone

    async def delete(self, ids: list[str]) -> int:
        gone = await self._run(self._delete, ids)
        if self._usage is not None:
            for rec in gone:
                self._usage[rec.uploader] = max(0, self._usage.get(rec.uploader, 0) - rec.bytes)
        return len(gone)

    def _by_conversation(self) -> dict[str, list[Attachment]]:
        out: dict[str, list[Attachment]] = {}
        for meta in self.root.glob("*/*.json"):
            try:
                rec = _record(json.loads(meta.read_text("utf-8")))
            except (OSError, ValueError, TypeError):
                continue
            out.setdefault(rec.conversation, []).append(rec)
        return out

    async def sweep(self, exists: Exists, now: float | None = None) -> int:
        now = time.time() if now is None else now
        doomed: list[str] = []
        for conv, recs in (await self._run(self._by_conversation)).items():
            old = [r.id for r in recs if r.created_at < now - self.orphan_grace_s]
            if old and not await exists(conv):
                doomed += old
        return await self.delete(doomed) if doomed else 0


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


_COLUMNS = ("id", "conversation", "viewer", "uploader", "uploader_role", "kind",
            "content_type", "width", "height", "bytes", "created_at", "source", "taken_at",
            "thumb_type", "meta")


class DatabaseAttachmentStorage(AttachmentStorage):
    """The durable store's ``attachments`` table: every node that reaches the store (its
    PostgreSQL) reads what any node wrote. ``db`` is a :class:`gateway.store.Database`."""

    name = "database"

    def __init__(self, db):
        self.db = db

    async def put(self, rec: Attachment, data: bytes, thumb: bytes | None) -> None:
        from ..store.database import Stmt

        row = [getattr(rec, c) for c in _COLUMNS]
        row[-1] = json.dumps(rec.meta)
        cols = ", ".join(_COLUMNS)
        await self.db.transact([Stmt(
            f"INSERT INTO attachments ({cols}, data, thumb) VALUES "
            f"({', '.join('?' * (len(_COLUMNS) + 2))})", (*row, data, thumb))])

    async def get(self, attachment_id: str) -> Attachment | None:
        if not valid_id(attachment_id):
            return None
        rows = await self.db.fetch(f"SELECT {', '.join(_COLUMNS)} FROM attachments "
                                   f"WHERE id = ?", (attachment_id,))
        if not rows:
            return None
        d = dict(zip(_COLUMNS, rows[0], strict=True))
        d["meta"] = json.loads(d["meta"] or "{}")
        return _record(d)

    async def read(self, attachment_id: str, thumb: bool = False) -> bytes | None:
        if not valid_id(attachment_id):
            return None
        col = "thumb" if thumb else "data"
        rows = await self.db.fetch(f"SELECT {col} FROM attachments WHERE id = ?",
                                   (attachment_id,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    async def usage(self, uploader: str) -> int:
        rows = await self.db.fetch("SELECT COALESCE(SUM(bytes), 0) FROM attachments "
                                   "WHERE uploader = ?", (uploader,))
        return int(rows[0][0])

    async def delete(self, ids: list[str]) -> int:
        from ..store.database import Stmt

        if not ids:
            return 0
        counts = await self.db.transact([Stmt(
            f"DELETE FROM attachments WHERE id IN ({', '.join('?' * len(ids))})", tuple(ids))])
        return counts[0]

    async def sweep(self, exists: Exists, now: float | None = None) -> int:
        from ..store.database import Stmt

        now = time.time() if now is None else now
        counts = await self.db.transact([Stmt(
            "DELETE FROM attachments WHERE created_at < ? AND conversation NOT IN "
            "(SELECT id FROM conversations)", (now - self.orphan_grace_s,))])
        return counts[0]
