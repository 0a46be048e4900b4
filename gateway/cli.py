"""``livedesk``: serve the gateway, mint tokens, manage accounts, shops and keys, evaluate
the bot.

Flags map one-to-one onto :class:`gateway.config.Config` fields; env vars
(``LIVEDESK_*``) fill what flags leave out, and a TOML file (``serve --config``) what both
leave out. See ``docs/configuration.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
from pathlib import Path

from .config import Config, ConfigError, load_config_file

DEFAULT_DATA_DIR = Path("data")  # relative to the working directory (docs/storage.md)
STAFF_ROLE_CHOICES = ("agent", "host", "supervisor", "admin")


def _serve_parser(sub) -> None:
    p = sub.add_parser("serve", help="run the gateway")
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="HTTP port (default 8080)")
    p.add_argument("--redis-url", default=None, help="use Redis for multi-node state/bus")
    p.add_argument("--room", action="append", type=Path, default=None,
                   help="room knowledge file (repeatable); default: the bundled demo room")
    p.add_argument("--dev", action="store_true", default=None,
                   help="demo mode: /api/dev/token on, secret generated if unset (loopback "
                        "only; the only way to turn dev mode on: LIVEDESK_DEV alone does not)")
    p.add_argument("--media-mode", choices=("passthrough", "transcode"), default=None,
                   help="how the media gateway forwards video/audio")
    p.add_argument("--node-id", default=None, help="name of this node (default host-pid)")
    p.add_argument("--public-url", default=None, help="URL browsers use to reach this node")
    p.add_argument("--log-level", default=None,
                   help="DEBUG, INFO, WARNING, ERROR (default LIVEDESK_LOG_LEVEL, else INFO)")
    p.add_argument("--log-format", default=os.environ.get("LIVEDESK_LOG_FORMAT") or None,
                   help="text|json (LIVEDESK_LOG_FORMAT; default: text with --dev, else json "
                        "lines: docs/operations.md#log-fields)")
    p.add_argument("--config", type=Path, default=None,
                   help="TOML file of settings (docs/configuration.md; default "
                        "LIVEDESK_CONFIG); LIVEDESK_* env vars override it, flags override both")
    _store_args(p)
    p.add_argument("--no-store", action="store_true",
                   help="keep nothing on disk (no history; everything in memory)")


def _store_args(p) -> None:
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"SQLite store directory (default LIVEDESK_DATA_DIR, else "
                        f"{DEFAULT_DATA_DIR}); LIVEDESK_DATABASE_URL=postgresql://… wins")


def _erase_parser(sub) -> None:
    p = sub.add_parser("erase", help="erase a viewer from the store (keeps a tombstone)")
    p.add_argument("--user", required=True, help="the viewer's id (token sub)")
    _store_args(p)


def _backup_parser(sub) -> None:
    p = sub.add_parser("backup", help="copy the SQLite store while it is in use")
    p.add_argument("--to", required=True, type=Path, help="file to write the copy to")
    _store_args(p)


def _token_parser(sub) -> None:
    p = sub.add_parser("token", help="print a token signed with LIVEDESK_SECRET (HS256; service "
                                     "and development use) as the last line")
    p.add_argument("--role", required=True,
                   choices=("viewer", "agent", "host", "supervisor", "admin", "service"))
    p.add_argument("--user", required=True)
    p.add_argument("--room", default=None)
    p.add_argument("--name", default=None)
    p.add_argument("--ttl", type=int, default=3600, help="seconds until expiry (default 3600)")


def _user_parser(sub) -> None:
    p = sub.add_parser("user", help="staff accounts: add, disable, reset-password, list")
    us = p.add_subparsers(dest="action", required=True)
    a = us.add_parser("add", help="add an account; the password is read from stdin")
    a.add_argument("--user", required=True, help="account id (what it signs in with)")
    a.add_argument("--role", required=True, action="append", choices=STAFF_ROLE_CHOICES,
                   help="agent|host|supervisor|admin (repeatable)")
    a.add_argument("--name", default="", help="display name")
    a.add_argument("--room", action="append", default=[], help="room (repeatable)")
    a.add_argument("--capacity", type=int, default=None, help="max conversations at once")
    a.add_argument("--max-compensation", type=float, default=None,
                   help="compensation authority without approval")
    a.add_argument("--skill", action="append", default=[], help="skill (repeatable)")
    a.add_argument("--password-stdin", action="store_true", required=True,
                   help="read the password from the first line of stdin (never from argv)")
    _store_args(a)
    d = us.add_parser("disable", help="disable an account (its sessions and tokens end)")
    d.add_argument("--user", required=True)
    _store_args(d)
    e = us.add_parser("enable", help="enable a disabled account again")
    e.add_argument("--user", required=True)
    _store_args(e)
    r = us.add_parser("reset-password", help="set a new password (from stdin); lifts a lockout")
    r.add_argument("--user", required=True)
    r.add_argument("--password-stdin", action="store_true", required=True)
    _store_args(r)
    sr = us.add_parser("set-role", help="replace an account's roles (its tokens end)")
    sr.add_argument("--user", required=True)
    sr.add_argument("--role", required=True, action="append", choices=STAFF_ROLE_CHOICES)
    _store_args(sr)
    ls = us.add_parser("list", help="one JSON line per account (no password hashes)")
    _store_args(ls)


def _shop_parser(sub) -> None:
    p = sub.add_parser("shop", help="shops that vouch for their viewers: add, list, "
                                    "rotate-secret")
    ss = p.add_subparsers(dest="action", required=True)
    a = ss.add_parser("add", help="register a shop; prints its identity secret last")
    a.add_argument("--shop", required=True)
    a.add_argument("--room", required=True, action="append", help="room (repeatable)")
    a.add_argument("--origin", action="append", default=[],
                   help="origin its pages embed the widget from (repeatable)")
    a.add_argument("--anonymous", action="store_true",
                   help="its widget admits viewers without the shop's identity (an anonymous "
                        "identity bound to the browser, docs/embedding.md)")
    _store_args(a)
    r = ss.add_parser("rotate-secret", help="a new identity secret (printed last); the old "
                                            "one is refused at once")
    r.add_argument("--shop", required=True)
    _store_args(r)
    ls = ss.add_parser("list", help="one JSON line per shop (no secrets)")
    _store_args(ls)


def _keys_parser(sub) -> None:
    p = sub.add_parser("keys", help="the gateway's token signing keys: rotate, list")
    ks = p.add_subparsers(dest="action", required=True)
    r = ks.add_parser("rotate", help="a new signing key; the old stays valid for --overlap")
    r.add_argument("--overlap", type=float, default=None,
                   help="seconds the old key stays valid (default LIVEDESK_KEY_OVERLAP_S, "
                        "else 3600)")
    _store_args(r)
    ls = ks.add_parser("list", help="the keys not yet expired (never the private halves)")
    _store_args(ls)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livedesk", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    _serve_parser(sub)
    _token_parser(sub)
    _erase_parser(sub)
    _backup_parser(sub)
    _user_parser(sub)
    _shop_parser(sub)
    _keys_parser(sub)
    sub.add_parser("bot-eval", help="run the bot over a cases file (see docs/bot.md)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bot-eval":
        from .support.bot.eval import main as bot_eval

        return bot_eval(argv[1:])
    args = build_parser().parse_args(argv)
    if args.cmd == "token":
        return _token(args)
    if args.cmd in ("erase", "backup"):
        return asyncio.run(_store_command(args))
    if args.cmd in ("user", "shop", "keys"):
        return asyncio.run(_auth_command(args))
    return _serve(args)


def _store_location(args) -> tuple[Path | None, str | None]:
    """(data dir, database URL) for a command that works on the store, as ``serve`` finds
    them: ``LIVEDESK_DATABASE_URL`` wins, else ``--data-dir``, ``LIVEDESK_DATA_DIR``,
    ``./data``."""
    url = os.environ.get("LIVEDESK_DATABASE_URL") or None
    if url:
        return None, url
    env_dir = os.environ.get("LIVEDESK_DATA_DIR")
    return args.data_dir or (Path(env_dir) if env_dir else DEFAULT_DATA_DIR), None


async def _store_command(args) -> int:
    import json

    from .durable import retention_of
    from .store import SQLITE_FILE, StoreError, open_store

    data_dir, url = _store_location(args)
    if args.cmd == "backup" and url is not None:
        print("livedesk: backup copies the SQLite store; back up PostgreSQL with its own "
              "tools (pg_dump, see docs/operations.md)", file=sys.stderr)
        return 2
    if data_dir is not None and not (data_dir / SQLITE_FILE).exists():
        print(f"livedesk: no store at {data_dir} (no {SQLITE_FILE}); give --data-dir or "
              f"LIVEDESK_DATABASE_URL", file=sys.stderr)
        return 2
    try:
        store = await open_store(data_dir=data_dir, database_url=url,
                                 retention=retention_of(Config()))
    except StoreError as e:
        print(f"livedesk: {e}", file=sys.stderr)
        return 2
    try:
        if args.cmd == "erase":
            # tell_live: a gateway running on this store removes the viewer from its live
            # state within a second (it polls erase_requests; docs/storage.md#erasure)
            r = await store.erase_viewer(args.user, by_role="cli", tell_live=True)
            print(json.dumps({"erased": True, "tombstone": r.tombstone,
                              "conversations": r.conversations, "messages": r.messages,
                              "records": r.records, "orders": r.orders,
                              "live": "requested"}))
        else:
            await store.backup(args.to)
            print(json.dumps({"backup": str(args.to)}))
        return 0
    except StoreError as e:
        print(f"livedesk: {e}", file=sys.stderr)
        return 2
    finally:
        await store.close()


def _read_password() -> str | None:
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line or None


async def _auth_command(args) -> int:
    """``livedesk user|shop|keys``: on the same store ``serve`` uses (made if missing, so
    the first admin can be added before the first start). A running server sees the change
    within ``auth_refresh_s``."""
    import json

    from .auth import admin as A
    from .durable import retention_of
    from .store import StoreError, open_store
    from .store.accounts import AccountStore

    data_dir, url = _store_location(args)
    password = None
    if getattr(args, "password_stdin", False):
        password = _read_password()
        if password is None:
            print("livedesk: no password on stdin", file=sys.stderr)
            return 2
    try:
        store = await open_store(data_dir=data_dir, database_url=url,
                                 retention=retention_of(Config()))
    except StoreError as e:
        print(f"livedesk: {e}", file=sys.stderr)
        return 2
    accounts = AccountStore(store.db)
    out = lambda obj: print(json.dumps(obj, ensure_ascii=False), flush=True)  # noqa: E731
    try:
        match args.cmd, args.action:
            case "user", "add":
                assert password is not None
                out(A.account_wire(await A.add_user(accounts, A.NewAccount(
                    user=args.user, roles=tuple(args.role), password=password, name=args.name,
                    rooms=tuple(args.room), capacity=args.capacity,
                    max_compensation=args.max_compensation, skills=tuple(args.skill)))))
            case "user", "disable" | "enable":
                out(A.account_wire(await A.disable_user(accounts, args.user,
                                                        args.action == "disable")))
            case "user", "reset-password":
                assert password is not None
                out(A.account_wire(await A.reset_password(accounts, args.user, password)))
            case "user", "set-role":
                out(A.account_wire(await A.set_roles(accounts, args.user, tuple(args.role))))
            case "user", "list":
                for a in await accounts.accounts():
                    out(A.account_wire(a))
            case "shop", "add" | "rotate-secret":
                shop = (await A.add_shop(accounts, args.shop, tuple(args.room),
                                         tuple(args.origin), anonymous=args.anonymous)
                        if args.action == "add"
                        else await A.rotate_shop_secret(accounts, args.shop))
                out(A.shop_wire(shop))
                print(shop.secret, flush=True)  # the last line: the shop's backend keeps it
            case "shop", "list":
                for sh in await accounts.shops():
                    out(A.shop_wire(sh))
            case "keys", "rotate":
                overlap = args.overlap
                if overlap is None:
                    overlap = Config.from_env().key_overlap_s
                out(await A.rotate_keys(accounts, overlap))
            case "keys", "list":
                for k in await A.list_keys(accounts):
                    out(k)
        return 0
    except (A.AdminError, StoreError, ConfigError) as e:
        print(f"livedesk: {e}", file=sys.stderr)
        return 2
    finally:
        await store.close()


def _token(args) -> int:
    from signaling import TokenAuthority

    from .config import check_secret

    secret = os.environ.get("LIVEDESK_SECRET")
    if not secret:
        print("error: LIVEDESK_SECRET is not set", file=sys.stderr)
        return 2
    try:
        check_secret(secret)  # a gateway would refuse it: a token signed with it is useless
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(TokenAuthority(secret).issue(args.user, args.role, room=args.room, name=args.name,
                                       ttl_s=args.ttl))
    return 0


def serve_config(args) -> Config:
    """``livedesk serve``'s configuration, checked: the file (``--config``, else
    ``LIVEDESK_CONFIG``), then the environment, then the flags. Raises ConfigError."""
    path = args.config
    if path is None and os.environ.get("LIVEDESK_CONFIG"):
        path = Path(os.environ["LIVEDESK_CONFIG"])
    file_values = load_config_file(path) if path is not None else None
    config = Config.from_env(file_values, host=args.host, port=args.port,
                             redis_url=args.redis_url, rooms=args.room, dev=args.dev,
                             media_mode=args.media_mode, node_id=args.node_id,
                             public_url=args.public_url, data_dir=args.data_dir,
                             log_level=args.log_level)
    if args.no_store:
        config.data_dir = config.database_url = None
    elif not (config.data_dir or config.database_url or config.redis_url):
        config.data_dir = DEFAULT_DATA_DIR  # one node: SQLite is the default
    return config.validate()


def _serve(args) -> int:
    try:
        config = serve_config(args)
    except ConfigError as e:
        print(f"livedesk: {e}", file=sys.stderr)
        return 2
    # logs (issue 22): JSON lines unless developing; the ids come from signaling.logctx
    from .logs import format_for, setup_logging
    try:
        log_format = format_for(args.log_format, config.dev)
    except ValueError as e:
        print(f"livedesk: {e}", file=sys.stderr)
        return 2
    setup_logging(log_format, config.log_level, node=config.node_id)
    loop_factory = _loop_factory(config.loop)
    if loop_factory is False:
        print("livedesk: LIVEDESK_LOOP=uvloop but uvloop is not installed "
              "(pip install uvloop, or LIVEDESK_LOOP=auto)", file=sys.stderr)
        return 2
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_run(config))


def _loop_factory(choice: str):
    """``Config.loop`` → an event-loop factory for ``asyncio.Runner`` (None: asyncio's own);
    ``False`` when ``uvloop`` is required but not installed."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return False if choice == "uvloop" else None
    return uvloop.new_event_loop


GC_THRESHOLDS = (50_000, 20, 20)  # CPython's default: (700, 10, 10)


def tune_gc() -> None:
    """The cyclic GC policy of a serving gateway process (set here, by the entry point, not
    as a side effect of an import).

    With ten thousand sockets the process holds about a million GC-tracked objects, and a
    full collection walks all of them: 420–560 ms measured, with the loop stopped. With
    CPython's defaults one came every few seconds while sessions connect or a flash-sale
    burst allocates, and one landing in a room broadcast made that update reach its last
    viewer 0.5 s late. So: everything built at start-up (modules, the bot's dictionaries,
    the app) is moved out of the collector's sight (``gc.freeze``: it lives as long as the
    process anyway), and collections run every 50,000 allocations instead of 700, with
    fewer escalations to the older generations. Objects freed by reference counting (nearly
    all) are unaffected; cyclic garbage waits a little longer. docs/performance.md has the
    figures."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _run(config: Config) -> int:
    from aiohttp import web

    from .app import create_app
    from .http_api import server_options

    app = create_app(config)
    runner = web.AppRunner(app, handle_signals=False, **server_options(config))
    try:
        await runner.setup()
    except BaseException:
        await runner.cleanup()  # close what had started before the failure
        raise
    tune_gc()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    u = config.public_url
    print(f"LiveDesk gateway {config.node_id} listening on {config.host}:{config.port} "
          f"({type(asyncio.get_running_loop()).__module__.split('.')[0]} loop)", flush=True)
    print(f"  viewer widget : {u}/", flush=True)
    print(f"  agent console : {u}/agent", flush=True)
    print(f"  host panel    : {u}/host", flush=True)
    print(f"  dashboard     : {u}/dashboard", flush=True)
    print(f"  admin         : {u}/admin", flush=True)
    if config.data_dir or config.database_url:
        print(f"  history       : {u}/history", flush=True)
    print(f"  health/metrics: {u}/healthz  {u}/metrics", flush=True)
    if config.dev:
        print("  (dev mode: pages fetch demo tokens from /api/dev/token)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:
            pass
    await stop.wait()
    from .app import GATEWAY

    print("draining…", flush=True)
    await app[GATEWAY].drain()
    await runner.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
