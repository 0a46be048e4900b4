"""One typed configuration object, built once from a TOML file (``--config``), ``LIVEDESK_*``
env vars and CLI flags (each overriding the one before) and passed down. Nothing below
``gateway.app`` reads the environment.

Every field is documented in ``docs/configuration.md`` (a test checks that each field has
an entry there).
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A configuration that must not start; the message says what to change."""


def _env(name: str, default=None):
    return os.environ.get(f"LIVEDESK_{name}", default)


def _list(value: str | None) -> list[str]:
    return [x.strip() for x in (value or "").split(",") if x.strip()]


# --- remote ICE candidates -------------------------------------------------------------------
# Remote ICE candidates (trickled or inside SDP) toward these ranges are ignored: the gateway
# would otherwise send STUN checks to whatever address a participant names (the private
# network, the host itself, a cloud metadata service). docker/compose.yaml gives coturn the
# same ranges (--denied-peer-ip; multicast there is --no-multicast-peers).
DEFAULT_ICE_DENIED_RANGES = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8",
)

_TRUE = frozenset(("on", "true", "1", "yes"))
_FALSE = frozenset(("off", "false", "0", "no"))


def parse_bool(name: str, value: str) -> bool:
    """A boolean setting, strictly: ``on/off/true/false/1/0/yes/no`` in any case.

    Why strict: ``LIVEDESK_DEV=off`` once meant *on* (anything but ``0/false/no`` did). A
    word we do not know is refused with the variable's name rather than guessed."""
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigError(f"LIVEDESK_{name}={value!r} is not a boolean; use one of "
                      f"on/off, true/false, 1/0, yes/no")


# --- secret strength ---------------------------------------------------------------------
MIN_SECRET_BITS = 256  # 32 bytes
MIN_SECRET_DISTINCT = 12
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+")


def secret_bits(secret: str) -> float:
    """Estimated entropy of ``secret`` in bits: an upper bound, never a proof of randomness.

    The estimate is ``effective length × log2(alphabet)``: the alphabet is the smallest
    usual one holding every character (hex 16, base64/base64url 64, else printable ASCII
    95); the effective length is the string's length without ``=`` padding, or the length
    of its repeating unit when it is a repetition (``abcabc…`` counts as ``abc``). So
    ``openssl rand -hex 32`` (64 hex digits) and ``secrets.token_urlsafe(32)`` (43 base64url
    characters) both reach 256 bits; ``a``, ``changeme`` or ``test-secret`` do not."""
    s = secret.rstrip("=")
    if not s:
        return 0.0
    period = (s + s).find(s, 1)
    length = period if 0 < period < len(s) else len(s)
    alphabet = 16 if _HEX.fullmatch(s) else 64 if _BASE64.fullmatch(s) else 95
    return length * math.log2(alphabet)


def check_secret(secret: str) -> None:
    """Refuse a token secret weaker than 32 bytes of entropy (see :func:`secret_bits`).

    Why: tokens are HS256; a short secret is found offline from one token (any viewer has
    one) and then every role, admin included, can be forged. Fewer than 12 distinct
    characters is refused too (a long run of a few characters is not random)."""
    bits = secret_bits(secret)
    distinct = len(set(secret))
    if bits < MIN_SECRET_BITS or distinct < MIN_SECRET_DISTINCT:
        raise ConfigError(
            f"LIVEDESK_SECRET is too weak: about {bits:.0f} bits with {distinct} distinct "
            f"characters; at least {MIN_SECRET_BITS} bits (32 random bytes) and "
            f"{MIN_SECRET_DISTINCT} distinct characters are required. Generate one with "
            f"`openssl rand -hex 32` (or use --dev on 127.0.0.1 for a demo).")


@dataclass
class Config:
    # serving
    host: str = "127.0.0.1"
    port: int = 8080
    dev: bool = False
    secret: str = ""
    public_url: str = ""  # how browsers reach us; printed by `make run`
    web_root: Path = field(default_factory=lambda: Path(__file__).resolve().parent.parent / "web")
    node_id: str = ""
    loop: str = "auto"  # event loop of `livedesk serve`: auto (uvloop if installed) | uvloop | asyncio
    log_level: str = "INFO"  # `livedesk serve`'s logging level (DEBUG, INFO, WARNING, ERROR)
    # state
    redis_url: str | None = None
    rooms: list[Path] = field(default_factory=list)
    # the durable store (docs/storage.md): SQLite in data_dir, or PostgreSQL by URL (wins);
    # neither: nothing is kept on disk (`livedesk serve` defaults data_dir to ./data)
    data_dir: Path | None = None
    database_url: str | None = None
    store_retention_messages_s: float = 365 * 86400.0  # resolved conversations; 0 = keep
    store_retention_records_s: float = 365 * 86400.0  # workspace records, orders; 0 = keep
    store_retention_audit_s: float = 5 * 365 * 86400.0  # audit, approvals, tombstones
    # the multi-node archiver (Redis + database_url; docs/storage.md#multi-node-the-archiver)
    archiver_lease_ttl_s: float = 5.0  # a dead leader is replaced within this
    archiver_keep_s: float = 60.0  # archived change-stream entries kept in Redis this long
    # signaling edge
    rate_per_s: float = 20.0
    rate_burst: int = 40
    retain_frames: int = 1000
    retain_s: float = 600.0
    # signaling edge: hello deadline, sockets per user / per client address
    hello_timeout_s: float = 10.0
    max_sockets_per_user: int = 16  # per node; 0 = no cap
    max_sockets_per_ip: int = 256  # per node; 0 = no cap
    trusted_proxies: list[str] = field(default_factory=list)  # addresses/CIDRs: forwarding hdrs
    # support
    agent_capacity: int = 5
    bot_timeout_s: float = 0.8
    replies_file: Path | None = None
    llm_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: str | None = None
    llm_timeout_s: float = 0.6
    # agent workspace: commerce adapter, authority limits, wellbeing, metrics
    commerce_url: str | None = None  # HTTP commerce adapter; None = embedded demo data
    commerce_token: str | None = None
    commerce_timeout_s: float = 2.0
    max_compensation_default: float = 50.0
    compensation_limits: dict = field(default_factory=dict)  # agent id / team → limit
    agent_capacities: dict = field(default_factory=dict)  # agent id → max conversations
    fatigue_threshold: int = 3
    conversion_window_s: float = 3600.0
    idle_close_s: float = 1800.0
    resolved_retention_s: float = 7 * 86400.0  # forget resolved conversations after; 0 = never
    order_retention_s: float = 7 * 86400.0  # forget order ids (replay check) after; 0 = never
    # support-plane limits (gateway/support/limits.py; docs/security.md)
    conversation_max_messages: int = 500
    conversation_max_bytes: int = 256 * 1024
    conversation_history: int = 200
    open_conversations_per_viewer: int = 3
    conversations_per_viewer_per_hour: int = 12
    escalations_slow_after: int = 3
    escalations_per_viewer_per_hour: int = 6
    escalation_delay_s: float = 5.0
    ring_interval_s: float = 30.0
    quick_close_s: float = 60.0
    nickname_max_chars: int = 24
    promotion_max_bytes: int = 2048
    promotions_per_room: int = 50
    knowledge_max_bytes: int = 512 * 1024
    compensation_viewer_daily: float = 0.0  # 0 = off
    # media
    stun_urls: list[str] = field(default_factory=list)
    turn_urls: list[str] = field(default_factory=list)
    turn_secret: str | None = None
    turn_ttl_s: int = 3600
    media_address: list[str] = field(default_factory=list)
    udp_port_min: int = 0
    udp_port_max: int = 0
    video_codec: str = "VP8"
    media_mode: str = "passthrough"
    # a lossy source's destinations are asked to buffer its round trip (docs/media.md,
    # "Playout delay"): "auto" (default) or "off"
    playout_delay: str = "auto"
    # senders may protect video with RED/ULPFEC, repaired at the gateway (docs/media.md,
    # "Forward error correction"): "on" (default) or "off"
    fec: str = "on"
    max_call_s: float = 3600.0
    ring_timeout_s: float = 30.0
    call_grace_s: float = 10.0
    drain_s: float = 30.0
    # attachments and recordings (docs/security.md#attachments): where they are kept
    # ("local": <data_dir>/attachments; "database": the durable store, every node reaches it)
    attachment_storage: str = "auto"  # auto: database with PostgreSQL, else local
    attachment_max_bytes: int = 10 * 1024 * 1024  # one upload, before processing
    attachment_max_pixels: int = 40_000_000  # width × height, checked before decoding
    attachment_max_side: int = 12_000  # either dimension, checked before decoding
    attachment_out_side: int = 2048  # the processed image's longest side
    attachment_thumb_side: int = 320
    attachment_uploads_per_minute: int = 20  # per uploader
    attachment_user_bytes: int = 200 * 1024 * 1024  # per uploader, stored bytes in total
    attachment_workers: int = 2  # image processing threads (never on the event loop)
    recording_max_s: float = 3600.0  # a recording stops by itself after this
    recording_consent_timeout_s: float = 60.0  # no answer from the viewer: declined
    # remote ICE candidates toward these ranges are ignored
    ice_denied_ranges: list[str] = field(default_factory=lambda: list(DEFAULT_ICE_DENIED_RANGES))
    ice_allow_loopback: bool = False  # tests/dev: accept 127/8 and ::1 candidates anyway
    # HTTP hardening, page headers, gateways pages may connect to
    http_header_timeout_s: float = 10.0  # complete request head within this (slowloris)
    http_body_timeout_s: float = 10.0  # complete REST body within this (slow body)
    frame_ancestors: list[str] = field(default_factory=lambda: ["'none'"])  # CSP; who may frame pages
    gateway_origins: list[str] = field(default_factory=list)  # extra origins ?gw= may name
    # accounts, sign-in and keys (docs/accounts.md)
    session_ttl_s: float = 12 * 3600.0  # a sign-in session (the cookie) lasts this long
    socket_token_ttl_s: int = 600  # socket tokens minted after sign-in; at most 600
    key_overlap_s: float = 3600.0  # `livedesk keys rotate`: the old key stays valid this long
    auth_refresh_s: float = 2.0  # keys, shops, revocations reloaded from the store this often
    login_max_failures: int = 5  # wrong passwords for one account before it is locked
    login_max_failures_per_address: int = 20  # wrong sign-ins from one address before locked
    login_lockout_s: float = 900.0  # failures counted within, and a lock lasts, this long
    # question radar, anomaly flags, surge mode (docs/webhooks.md, docs/operations.md)
    radar_tick_s: float = 1.0  # anomaly flags and surge judged this often
    anomaly_window_s: float = 120.0  # reports counted over this window
    anomaly_history_s: float = 3600.0  # a product's own history (before the window)
    anomaly_min_count: int = 6  # no flag below this many reports in the window
    anomaly_ratio: float = 3.0  # ... nor below this many times the expected count
    anomaly_p_raise: float = 1e-4  # raise when P(X ≥ observed | expected) is below
    anomaly_p_clear: float = 0.01  # clear when it is back above
    anomaly_floor_ratio: float = 0.01  # at least this many reports per other question expected
    anomaly_floor_per_hour: float = 2.0  # and at least this many an hour
    surge_enter_messages_per_min: float = 120.0  # viewers' messages a minute: enter surge
    surge_exit_messages_per_min: float = 60.0  # below this (and the queue low) for calm_s: leave
    surge_enter_queue: int = 20  # queued conversations in the room: enter surge
    surge_exit_queue: int = 5
    surge_calm_s: float = 120.0
    surge_warn_before_s: float = 300.0  # agents warned this long before a promotion's starts_at
    surge_callback_slot_s: float = 300.0  # callback slots this long ...
    surge_callbacks_per_slot: int = 5  # ... each with this many callbacks
    surge_callback_delay_s: float = 600.0  # the first slot offered starts at least this far on
    surge_notice: str = ""  # pinned in every open conversation at surge on ("" = built-in text)
    # signed webhooks out (docs/webhooks.md)
    webhook_urls: list[str] = field(default_factory=list)
    webhook_secret: str = ""
    webhook_key_id: str = "livedesk"
    webhook_events: list[str] = field(default_factory=list)  # empty: every event
    webhook_timeout_s: float = 5.0
    webhook_retry_base_s: float = 1.0
    webhook_retry_max_s: float = 300.0
    webhook_max_attempts: int = 12
    # single sign-on through an OpenID Connect provider (docs/accounts.md, "Single sign-on");
    # off unless oidc_issuer is set
    oidc_issuer: str = ""  # e.g. https://login.example.com/realms/shop (its discovery document)
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_scopes: str = "openid profile email groups"
    oidc_user_claim: str = "email"  # the ID token claim that names the account
    oidc_groups_claim: str = "groups"  # the claim holding the user's groups (a list)
    oidc_role_map: dict = field(default_factory=dict)  # group → staff role
    oidc_create_accounts: bool = True  # first sign-in creates the account (else: must exist)

    def _validate_oidc(self) -> None:
        _oidc_checks(self)

    @classmethod
    def from_env(cls, file_values: Mapping[str, Any] | None = None, **overrides) -> Config:
        """Defaults, then ``file_values`` (a checked config file: :func:`load_config_file`),
        then ``LIVEDESK_*`` env vars, then ``overrides`` (flags; ``None`` = not given)."""
        c = cls()
        for k, v in (file_values or {}).items():
            setattr(c, k, v)
        env_map = {
            "host": ("HOST", str), "port": ("PORT", int), "secret": ("SECRET", str),
            "public_url": ("PUBLIC_URL", str), "node_id": ("NODE_ID", str),
            "redis_url": ("REDIS_URL", str), "rate_per_s": ("RATE_PER_S", float),
            "rate_burst": ("RATE_BURST", int), "retain_frames": ("RETAIN_FRAMES", int),
            "retain_s": ("RETAIN_S", float), "agent_capacity": ("AGENT_CAPACITY", int),
            "bot_timeout_s": ("BOT_TIMEOUT_S", float), "llm_url": ("LLM_URL", str),
            "llm_model": ("LLM_MODEL", str), "llm_api_key": ("LLM_API_KEY", str),
            "llm_timeout_s": ("LLM_TIMEOUT_S", float), "turn_secret": ("TURN_SECRET", str),
            "turn_ttl_s": ("TURN_TTL_S", int), "udp_port_min": ("UDP_PORT_MIN", int),
            "udp_port_max": ("UDP_PORT_MAX", int), "video_codec": ("VIDEO_CODEC", str),
            "media_mode": ("MEDIA_MODE", str), "max_call_s": ("MAX_CALL_S", float),
            "playout_delay": ("PLAYOUT_DELAY", str),
            "fec": ("FEC", str),
            "attachment_storage": ("ATTACHMENT_STORAGE", str),
            "attachment_max_bytes": ("ATTACHMENT_MAX_BYTES", int),
            "attachment_max_pixels": ("ATTACHMENT_MAX_PIXELS", int),
            "attachment_uploads_per_minute": ("ATTACHMENT_UPLOADS_PER_MINUTE", int),
            "attachment_user_bytes": ("ATTACHMENT_USER_BYTES", int),
            "attachment_max_side": ("ATTACHMENT_MAX_SIDE", int),
            "attachment_out_side": ("ATTACHMENT_OUT_SIDE", int),
            "attachment_thumb_side": ("ATTACHMENT_THUMB_SIDE", int),
            "attachment_workers": ("ATTACHMENT_WORKERS", int),
            "recording_max_s": ("RECORDING_MAX_S", float),
            "recording_consent_timeout_s": ("RECORDING_CONSENT_TIMEOUT_S", float),
            "ring_timeout_s": ("RING_TIMEOUT_S", float), "call_grace_s": ("CALL_GRACE_S", float),
            "commerce_url": ("COMMERCE_URL", str), "commerce_token": ("COMMERCE_TOKEN", str),
            "commerce_timeout_s": ("COMMERCE_TIMEOUT_S", float),
            "max_compensation_default": ("MAX_COMPENSATION_DEFAULT", float),
            "fatigue_threshold": ("FATIGUE_THRESHOLD", int),
            "conversion_window_s": ("CONVERSION_WINDOW_S", float),
            "idle_close_s": ("IDLE_CLOSE_S", float), "loop": ("LOOP", str),
            "log_level": ("LOG_LEVEL", str),
            "resolved_retention_s": ("RESOLVED_RETENTION_S", float),
            "database_url": ("DATABASE_URL", str),
            "store_retention_messages_s": ("STORE_RETENTION_MESSAGES_S", float),
            "store_retention_records_s": ("STORE_RETENTION_RECORDS_S", float),
            "store_retention_audit_s": ("STORE_RETENTION_AUDIT_S", float),
            "archiver_lease_ttl_s": ("ARCHIVER_LEASE_TTL_S", float),
            "archiver_keep_s": ("ARCHIVER_KEEP_S", float),
            "order_retention_s": ("ORDER_RETENTION_S", float),
            # support-plane limits
            **{f: (f.upper(), type(getattr(c, f))) for f in _ABUSE_LIMITS},
            "http_header_timeout_s": ("HTTP_HEADER_TIMEOUT_S", float),
            "http_body_timeout_s": ("HTTP_BODY_TIMEOUT_S", float),
            # the edge's deadlines and socket caps
            "hello_timeout_s": ("HELLO_TIMEOUT_S", float),
            "max_sockets_per_user": ("MAX_SOCKETS_PER_USER", int),
            "max_sockets_per_ip": ("MAX_SOCKETS_PER_IP", int),
            # accounts, sign-in and keys
            **{f: (f.upper(), type(getattr(c, f))) for f in _AUTH_SETTINGS},
            # radar, anomaly flags, surge, webhooks
            **{f: (f.upper(), type(getattr(c, f))) for f in _RADAR_SETTINGS},
            "oidc_issuer": ("OIDC_ISSUER", str), "oidc_client_id": ("OIDC_CLIENT_ID", str),
            "oidc_client_secret": ("OIDC_CLIENT_SECRET", str),
            "oidc_scopes": ("OIDC_SCOPES", str), "oidc_user_claim": ("OIDC_USER_CLAIM", str),
            "oidc_groups_claim": ("OIDC_GROUPS_CLAIM", str),
        }
        for attr, (name, typ) in env_map.items():
            v = _env(name)
            if v is not None and v != "":
                try:
                    setattr(c, attr, typ(v))
                except ValueError:
                    raise ConfigError(f"LIVEDESK_{name}={v!r} is not a valid {typ.__name__}") from None
        for attr, name in (("stun_urls", "STUN_URLS"), ("turn_urls", "TURN_URLS"),
                           ("media_address", "MEDIA_ADDRESS"),
                           ("frame_ancestors", "FRAME_ANCESTORS"),
                           ("gateway_origins", "GATEWAY_ORIGINS"),
                           ("trusted_proxies", "TRUSTED_PROXIES"),
                           ("webhook_urls", "WEBHOOK_URLS"),
                           ("webhook_events", "WEBHOOK_EVENTS")):
            if _env(name):
                setattr(c, attr, _list(_env(name)))
        # remote ICE candidates
        if _env("ICE_DENIED_RANGES"):
            v = _env("ICE_DENIED_RANGES")
            c.ice_denied_ranges = [] if v.strip().lower() == "none" else _list(v)
        if _env("ICE_ALLOW_LOOPBACK"):
            c.ice_allow_loopback = parse_bool("ICE_ALLOW_LOOPBACK", _env("ICE_ALLOW_LOOPBACK"))
        if _env("WEB_ROOT"):
            c.web_root = Path(_env("WEB_ROOT"))
        if _env("DRAIN_S"):
            c.drain_s = float(_env("DRAIN_S"))
        if _env("DATA_DIR"):
            c.data_dir = Path(_env("DATA_DIR"))
        if _env("REPLIES_FILE"):
            c.replies_file = Path(_env("REPLIES_FILE"))
        if _env("ROOMS"):
            c.rooms = [Path(p) for p in _list(_env("ROOMS"))]
        if _env("OIDC_CREATE_ACCOUNTS"):
            c.oidc_create_accounts = parse_bool("OIDC_CREATE_ACCOUNTS",
                                                _env("OIDC_CREATE_ACCOUNTS"))
        for attr, name in (("compensation_limits", "COMPENSATION_LIMITS"),
                           ("agent_capacities", "AGENT_CAPACITIES"),
                           ("oidc_role_map", "OIDC_ROLE_MAP")):
            if _env(name):
                setattr(c, attr, _json_object(name, _env(name)))
        _dev_from_env(overrides.get("dev"))
        for k, v in overrides.items():
            if v is not None:
                setattr(c, k, v)
        return c

    def validate(self) -> Config:
        """Refuse unsafe or inconsistent settings with a message that says what to do."""
        if self.dev:
            if not _is_loopback(self.host):
                raise ConfigError(
                    f"--dev hands out tokens to anyone and is only allowed on a loopback host; "
                    f"{self.host!r} is not loopback. Drop --dev and set LIVEDESK_SECRET instead.")
            if self.public_url and not _is_loopback(urlsplit(self.public_url).hostname or ""):
                raise ConfigError(
                    f"--dev hands out tokens to anyone, but LIVEDESK_PUBLIC_URL="
                    f"{self.public_url!r} says browsers reach this node from elsewhere (a "
                    f"proxy in front of a loopback port is still public). Drop --dev and set "
                    f"LIVEDESK_SECRET, or use a loopback public URL.")
            if not self.secret:
                self.secret = secrets.token_urlsafe(32)
        elif not self.secret:
            raise ConfigError("LIVEDESK_SECRET is not set. Set it to a long random string "
                              "(tokens are signed with it), or use --dev on 127.0.0.1 for a demo.")
        else:
            check_secret(self.secret)
        for name, value in (("HTTP_HEADER_TIMEOUT_S", self.http_header_timeout_s),
                            ("HTTP_BODY_TIMEOUT_S", self.http_body_timeout_s)):
            if not value > 0:
                raise ConfigError(f"LIVEDESK_{name} must be a positive number of seconds")
        self.frame_ancestors = _frame_ancestors(self.frame_ancestors)
        self.gateway_origins = [_origin("GATEWAY_ORIGINS", o) for o in self.gateway_origins]
        if self.media_mode not in ("passthrough", "transcode"):
            raise ConfigError("--media-mode must be passthrough or transcode")
        if self.playout_delay not in ("auto", "off"):
            raise ConfigError("LIVEDESK_PLAYOUT_DELAY must be auto or off")
        if self.fec not in ("on", "off"):
            raise ConfigError("LIVEDESK_FEC must be on or off")
        if self.loop not in ("auto", "uvloop", "asyncio"):
            raise ConfigError("LIVEDESK_LOOP must be auto, uvloop or asyncio")
        if self.log_level.upper() not in LOG_LEVELS:
            raise ConfigError(f"LIVEDESK_LOG_LEVEL={self.log_level!r}: use one of "
                              f"{', '.join(LOG_LEVELS)}")
        if self.attachment_storage not in ("auto", "local", "database"):
            raise ConfigError("LIVEDESK_ATTACHMENT_STORAGE must be auto, local or database")
        for name, value in (("ATTACHMENT_MAX_BYTES", self.attachment_max_bytes),
                            ("ATTACHMENT_MAX_PIXELS", self.attachment_max_pixels),
                            ("ATTACHMENT_UPLOADS_PER_MINUTE", self.attachment_uploads_per_minute),
                            ("ATTACHMENT_USER_BYTES", self.attachment_user_bytes)):
            if value <= 0:
                raise ConfigError(f"LIVEDESK_{name} must be a positive whole number")
        if self.resolved_retention_s < 0:
            raise ConfigError("LIVEDESK_RESOLVED_RETENTION_S must be 0 (keep forever) or a "
                              "number of seconds")
        if self.order_retention_s < 0:
            raise ConfigError("LIVEDESK_ORDER_RETENTION_S must be 0 (keep forever) or a "
                              "number of seconds")
        if self.database_url and not self.database_url.startswith(("postgresql://",
                                                                   "postgres://")):
            raise ConfigError("LIVEDESK_DATABASE_URL must be a postgresql:// URL (SQLite is "
                              "the default: --data-dir / LIVEDESK_DATA_DIR)")
        for name in ("store_retention_messages_s", "store_retention_records_s",
                     "store_retention_audit_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"LIVEDESK_{name.upper()} must be 0 (keep forever) or a "
                                  f"number of seconds")
        if not 0.5 <= self.archiver_lease_ttl_s <= 300:
            raise ConfigError("LIVEDESK_ARCHIVER_LEASE_TTL_S must be between 0.5 and 300 "
                              "seconds")
        if self.archiver_keep_s < 0:
            raise ConfigError("LIVEDESK_ARCHIVER_KEEP_S must be 0 or a number of seconds")
        for name in _ABUSE_LIMITS:  # support-plane limits
            if getattr(self, name) < 0:
                raise ConfigError(f"LIVEDESK_{name.upper()} must not be negative")
        # the edge's socket limits
        if self.hello_timeout_s <= 0:
            raise ConfigError("LIVEDESK_HELLO_TIMEOUT_S must be a positive number of seconds")
        if self.max_sockets_per_user < 0 or self.max_sockets_per_ip < 0:
            raise ConfigError("LIVEDESK_MAX_SOCKETS_PER_USER and LIVEDESK_MAX_SOCKETS_PER_IP "
                              "must be 0 (no cap) or a positive number")
        from signaling.clientaddr import parse_networks
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as e:
            raise ConfigError(f"LIVEDESK_TRUSTED_PROXIES: {e}") from None
        for name in _AUTH_SETTINGS:
            if not getattr(self, name) > 0:
                raise ConfigError(f"LIVEDESK_{name.upper()} must be a positive number")
        if self.socket_token_ttl_s > 600:
            raise ConfigError("LIVEDESK_SOCKET_TOKEN_TTL_S must be at most 600 (socket tokens "
                              "are short-lived: a stolen one is useful for minutes at most)")
        if self.oidc_issuer:
            self._validate_oidc()
        _radar_checks(self)
        if self.udp_port_min and self.udp_port_max and self.udp_port_min > self.udp_port_max:
            raise ConfigError("LIVEDESK_UDP_PORT_MIN must not exceed LIVEDESK_UDP_PORT_MAX")
        for r in self.ice_denied_ranges:
            try:
                ipaddress.ip_network(r, strict=True)
            except ValueError as e:
                raise ConfigError(f"LIVEDESK_ICE_DENIED_RANGES: {r!r} is not a network in CIDR "
                                  f"notation ({e})") from None
        if self.turn_ttl_s <= 0:
            raise ConfigError("LIVEDESK_TURN_TTL_S must be a positive number of seconds")
        if self.turn_urls and not self.turn_secret:
            raise ConfigError("LIVEDESK_TURN_URLS needs LIVEDESK_TURN_SECRET (TURN REST API secret)")
        if not self.node_id:
            self.node_id = f"{os.uname().nodename}-{os.getpid()}"
        if not self.public_url:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
            self.public_url = f"http://{host}:{self.port}"
        return self


_RADAR_SETTINGS = (
    "radar_tick_s", "anomaly_window_s", "anomaly_history_s", "anomaly_min_count",
    "anomaly_ratio", "anomaly_p_raise", "anomaly_p_clear", "anomaly_floor_ratio",
    "anomaly_floor_per_hour", "surge_enter_messages_per_min", "surge_exit_messages_per_min",
    "surge_enter_queue", "surge_exit_queue", "surge_calm_s", "surge_warn_before_s",
    "surge_callback_slot_s", "surge_callbacks_per_slot", "surge_callback_delay_s",
    "surge_notice", "webhook_secret", "webhook_key_id", "webhook_timeout_s",
    "webhook_retry_base_s", "webhook_retry_max_s", "webhook_max_attempts")


def _radar_checks(c: Config) -> None:
    """Radar, anomaly, surge and webhook settings that cannot work refuse to start."""
    for name in _RADAR_SETTINGS:
        v = getattr(c, name)
        if isinstance(v, (int, float)) and not (v > 0 or (v == 0 and name.startswith(
                ("anomaly_floor", "surge_exit", "surge_callback_delay")))):
            raise ConfigError(f"LIVEDESK_{name.upper()} must be a positive number")
    if not c.anomaly_p_raise < c.anomaly_p_clear < 1:
        raise ConfigError("LIVEDESK_ANOMALY_P_RAISE must be below LIVEDESK_ANOMALY_P_CLEAR, "
                          "and both below 1")
    if c.surge_exit_messages_per_min > c.surge_enter_messages_per_min \
            or c.surge_exit_queue > c.surge_enter_queue:
        raise ConfigError("surge exit thresholds must not exceed the enter thresholds")
    if c.webhook_urls:
        if len(c.webhook_secret) < 32:
            raise ConfigError("LIVEDESK_WEBHOOK_URLS needs LIVEDESK_WEBHOOK_SECRET of at least "
                              "32 characters (e.g. `openssl rand -hex 32`): receivers check "
                              "every delivery's signature with it")
        for u in c.webhook_urls:
            parts = urlsplit(u)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"LIVEDESK_WEBHOOK_URLS: {u!r} is not an http(s) URL")
    from .webhooks import EVENTS

    unknown = [e for e in c.webhook_events if e not in EVENTS]
    if unknown:
        raise ConfigError(f"LIVEDESK_WEBHOOK_EVENTS: unknown events {unknown}; known: "
                          f"{', '.join(EVENTS)}")


def _oidc_checks(c: Config) -> None:
    """Single sign-on settings that cannot work refuse to start (one line each)."""
    from urllib.parse import urlsplit

    u = urlsplit(c.oidc_issuer)
    loopback = u.hostname in ("127.0.0.1", "localhost", "::1")
    if u.scheme != "https" and not (u.scheme == "http" and loopback):
        raise ConfigError("LIVEDESK_OIDC_ISSUER must be an https:// URL (http:// only on "
                          "loopback, for tests)")
    if not c.oidc_client_id or not c.oidc_client_secret:
        raise ConfigError("LIVEDESK_OIDC_ISSUER needs LIVEDESK_OIDC_CLIENT_ID and "
                          "LIVEDESK_OIDC_CLIENT_SECRET (the client registered at the provider)")
    if "openid" not in c.oidc_scopes.split():
        raise ConfigError("LIVEDESK_OIDC_SCOPES must include openid")
    staff = ("agent", "host", "supervisor", "admin")
    if not c.oidc_role_map:
        raise ConfigError("LIVEDESK_OIDC_ROLE_MAP is required with LIVEDESK_OIDC_ISSUER: a JSON "
                          'object from group to role, e.g. {"support-agents": "agent"}')
    for group, role in c.oidc_role_map.items():
        if role not in staff:
            raise ConfigError(f"LIVEDESK_OIDC_ROLE_MAP: group {group!r} maps to {role!r}; "
                              f"roles are {', '.join(staff)}")


# the support-plane limits, each LIVEDESK_<NAME> (gateway/support/limits.py)
_ABUSE_LIMITS = ("conversation_max_messages", "conversation_max_bytes", "conversation_history",
                 "open_conversations_per_viewer", "conversations_per_viewer_per_hour",
                 "escalations_slow_after", "escalations_per_viewer_per_hour",
                 "escalation_delay_s", "ring_interval_s", "quick_close_s", "nickname_max_chars",
                 "promotion_max_bytes", "promotions_per_room", "knowledge_max_bytes",
                 "compensation_viewer_daily")


# accounts, sign-in and keys, each LIVEDESK_<NAME> (docs/accounts.md)
_AUTH_SETTINGS = ("session_ttl_s", "socket_token_ttl_s", "key_overlap_s", "auth_refresh_s",
                  "login_max_failures", "login_max_failures_per_address", "login_lockout_s")


def _json_object(name: str, value: str) -> dict:
    """``LIVEDESK_<name>``: a JSON object inline, or the path of a file holding one."""
    import json

    text = value if value.lstrip().startswith("{") else None
    if text is None:
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"LIVEDESK_{name}: not inline JSON and not a readable file ({e})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"LIVEDESK_{name} is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"LIVEDESK_{name} must be a JSON object")
    return obj


def _dev_from_env(flag: bool | None) -> None:
    """``LIVEDESK_DEV`` never turns dev mode on: only ``--dev`` on the command line does.

    Why: dev mode mints admin tokens for anyone who asks; an env var is inherited, set in
    a compose file or a unit file and forgotten, so it must not be the switch. The variable
    is still parsed strictly (so ``LIVEDESK_DEV=off`` is simply off); a true value without
    ``--dev`` refuses to start instead of silently doing something else than it says."""
    raw = _env("DEV")
    if raw is None or raw == "":
        return
    if parse_bool("DEV", raw) and flag is not True:
        raise ConfigError(f"LIVEDESK_DEV={raw!r} does not turn dev mode on; dev mode needs "
                          f"`livedesk serve --dev` on the command line (loopback only). Unset "
                          f"LIVEDESK_DEV or pass --dev.")


_ORIGIN_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def _origin(name: str, value: str) -> str:
    """``scheme://host[:port]`` with ``http(s)`` spelled ``ws(s)``; anything else refused."""
    try:
        u = urlsplit(value.strip())
        port = u.port
    except ValueError:
        u, port = None, None
    if (u is None or u.scheme not in _ORIGIN_SCHEMES or not u.hostname or u.path not in ("", "/")
            or u.query or u.fragment or u.username or u.password):
        raise ConfigError(f"LIVEDESK_{name}: {value!r} is not an origin like "
                          f"wss://gw.example.com or ws://127.0.0.1:8081")
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    return f"{_ORIGIN_SCHEMES[u.scheme]}://{host}" + (f":{port}" if port else "")


_FRAME_SOURCE = re.compile(r"'none'|'self'|https?://(\*\.)?[A-Za-z0-9.-]+(:\d+)?")


def _frame_ancestors(values: list[str]) -> list[str]:
    """CSP ``frame-ancestors`` sources: ``'none'``, ``'self'`` or ``http(s)://host[:port]``
    (``*.`` allowed). Anything else (``;``, spaces, ``*``, ``data:``) is refused, so a
    setting cannot open the policy or inject another directive."""
    out = []
    for v in values or ["'none'"]:
        v = v.strip()
        if v in ("none", "self"):
            v = f"'{v}'"
        if not _FRAME_SOURCE.fullmatch(v):
            raise ConfigError(f"LIVEDESK_FRAME_ANCESTORS: {v!r} is not 'none', 'self' or an "
                              f"origin like https://shop.example.com")
        out.append(v)
    if "'none'" in out and len(out) > 1:
        raise ConfigError("LIVEDESK_FRAME_ANCESTORS: 'none' cannot be combined with origins")
    return out


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def field_names() -> list[str]:
    return [f.name for f in fields(Config)]


# --- the config file: `livedesk serve --config livedesk.toml` ---------------------------
# Keys are the field names above (docs/configuration.md lists each with its env variable),
# at the top level of the file; tables are only the values of the dict settings.
# Dev mode is never in a file, for the reason _dev_from_env gives for the environment.
NOT_IN_FILE = {"dev": "dev mode is turned on only by `livedesk serve --dev` on the command "
                      "line (loopback only), never by a file"}
_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number",
               str: "a string", Path: "a path (a string)", dict: "a table"}


def file_keys() -> list[str]:
    """Every key a config file may hold."""
    return [n for n in field_names() if n not in NOT_IN_FILE]


def load_config_file(path: Path) -> dict[str, Any]:
    """Read and check a TOML config file; the values come back with the fields' types.

    Why checked here, whole, before anything starts: a misspelt key would otherwise be
    ignored and the default silently used, and a string where a number belongs would fail
    later and far from its cause. Every error names the file and the key. Relative paths
    are relative to the file's directory, so a file means the same from any working
    directory."""
    import difflib
    import tomllib
    import typing

    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(f"--config {path}: cannot read it ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    hints = typing.get_type_hints(Config)
    allowed = file_keys()
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in NOT_IN_FILE:
            raise ConfigError(f"{path}: key {key!r}: {NOT_IN_FILE[key]}")
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            what = "table" if isinstance(value, dict) else "key"
            raise ConfigError(f"{path}: unknown {what} {key!r}{hint}; the keys are the "
                              f"settings of docs/configuration.md, at the top level")
        out[key] = _file_value(path, key, hints[key], value)
    return out


def _file_value(path: Path, key: str, hint: Any, value: Any) -> Any:
    """``value`` as the field's type, or a ConfigError naming ``key``."""
    import types
    import typing

    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType):  # `X | None`: a file gives X (omit the key for None)
        (hint,) = [a for a in args if a is not type(None)]
        args = typing.get_args(hint)
    origin = typing.get_origin(hint) or hint
    ok: bool
    if origin is bool:
        ok = isinstance(value, bool)
    elif origin is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif origin is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif origin in (str, Path):
        ok = isinstance(value, str)
    elif origin is dict:
        ok = isinstance(value, dict)
    elif origin is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:  # a field type this loader does not know: a bug here, not in the file
        raise TypeError(f"config field {key} has an unsupported type {hint!r}")
    if not ok:
        want = (f"an array of {'paths (strings)' if args and args[0] is Path else 'strings'}"
                if origin is list else _TYPE_WORDS[origin])
        got = type(value).__name__ if not isinstance(value, dict) else "table"
        raise ConfigError(f"{path}: key {key!r} must be {want}, not {got} {value!r:.60}")
    if origin is Path:
        return _file_path(path, value)
    if origin is list and args and args[0] is Path:
        return [_file_path(path, v) for v in value]
    return value


def _file_path(path: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (path.parent / p)
