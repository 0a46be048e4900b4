"""``livedesk erase`` and ``livedesk backup`` work on the store a running server uses (same
``--data-dir`` / ``LIVEDESK_DATABASE_URL``), from another process, while it writes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from gateway.store import SearchQuery, Store
from gateway.store.database import SQLiteDatabase

from .helpers import conversation

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_780_000_000.0


async def livedesk(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    e.update(PYTHONPATH=str(ROOT), **env)
    p = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli", *args,
                                             env=e, cwd=str(ROOT),
                                             stdout=asyncio.subprocess.PIPE,
                                             stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(p.communicate(), 60)
    return p.returncode or 0, out.decode(), err.decode()


async def test_erase_from_the_cli_while_the_server_writes(backends, tmp_path):
    if backends.kind == "sqlite":
        server = await backends.open("shared")
        where = ["--data-dir", str(Path(server.db.location).parent)]
        env: dict[str, str] = {}
    else:
        url = await backends.url("shared")
        server = await backends.open("shared")
        where, env = [], {"LIVEDESK_DATABASE_URL": url}
    await server.apply(conversation("c-v1", "v1", "r1", T0, ["我的手机号是13800000000"],
                                    agent="a1", resolved=True))
    stop = asyncio.Event()

    async def busy() -> int:  # the server keeps writing other viewers' conversations
        i = 0
        while not stop.is_set():
            await server.apply(conversation(f"c-o{i}", "other", "r1", T0 + i, ["hi"]))
            i += 1
        return i

    task = asyncio.create_task(busy())
    code, out, err = await livedesk("erase", "--user", "v1", *where, env=env)
    stop.set()
    written = await task
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["erased"] and report["conversations"] == 1 and report["messages"] == 2
    assert await server.search(SearchQuery(user="v1")) == []
    assert await server.search(SearchQuery(q="13800000000")) == []
    assert len(await server.search(SearchQuery(user="other", limit=200))) == min(written, 200)
    assert written > 0


async def test_backup_from_the_cli_and_refusals(tmp_path):
    db = SQLiteDatabase(tmp_path / "data" / "livedesk.db")
    store = await Store(db).start()
    try:
        await store.apply(conversation("c1", "v1", "r1", T0, ["备份我"]))
        code, out, err = await livedesk("backup", "--to", str(tmp_path / "copy.db"),
                                        "--data-dir", str(tmp_path / "data"), env={})
        assert code == 0, err
        copy = await Store(SQLiteDatabase(tmp_path / "copy.db")).start()
        try:
            assert [h.conversation for h in await copy.search(SearchQuery(q="备份"))] == ["c1"]
        finally:
            await copy.close()
    finally:
        await store.close()
    code, _, err = await livedesk("erase", "--user", "v1", "--data-dir",
                                  str(tmp_path / "nothing-here"), env={})
    assert code == 2 and "no store" in err
    code, _, err = await livedesk("erase", "--user", "v1",
                                  env={"LIVEDESK_DATABASE_URL": "mysql://x"})
    assert code == 2 and "postgresql://" in err
    code, _, err = await livedesk("backup", "--to", str(tmp_path / "x.db"),
                                  env={"LIVEDESK_DATABASE_URL":
                                       "postgresql://postgres@127.0.0.1:5432/postgres"})
    assert code == 2 and "pg_dump" in err
