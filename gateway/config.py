"""One typed configuration object, built once from CLI flags and ``LIVEDESK_*`` env vars and
passed down. Nothing below ``gateway.app`` reads the environment.

Every field is documented in ``docs/configuration.md`` (a test checks that each field has
an entry there).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path


class ConfigError(ValueError):
    """A configuration that must not start; the message says what to change."""


def _env(name: str, default=None):
    return os.environ.get(f"LIVEDESK_{name}", default)


def _list(value: str | None) -> list[str]:
    return [x.strip() for x in (value or "").split(",") if x.strip()]


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
    # state
    redis_url: str | None = None
    rooms: list[Path] = field(default_factory=list)
    # signaling edge
    rate_per_s: float = 20.0
    rate_burst: int = 40
    retain_frames: int = 1000
    retain_s: float = 600.0
    # signaling edge, issue 13 (EDGE): hello deadline, sockets per user / per client address
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
    # agent workspace (issue 5): commerce adapter, authority limits, wellbeing, metrics
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
    max_call_s: float = 3600.0
    ring_timeout_s: float = 30.0
    call_grace_s: float = 10.0
    drain_s: float = 30.0

    @classmethod
    def from_env(cls, **overrides) -> "Config":
        c = cls()
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
            "ring_timeout_s": ("RING_TIMEOUT_S", float), "call_grace_s": ("CALL_GRACE_S", float),
            "commerce_url": ("COMMERCE_URL", str), "commerce_token": ("COMMERCE_TOKEN", str),
            "commerce_timeout_s": ("COMMERCE_TIMEOUT_S", float),
            "max_compensation_default": ("MAX_COMPENSATION_DEFAULT", float),
            "fatigue_threshold": ("FATIGUE_THRESHOLD", int),
            "conversion_window_s": ("CONVERSION_WINDOW_S", float),
            "idle_close_s": ("IDLE_CLOSE_S", float), "loop": ("LOOP", str),
            "resolved_retention_s": ("RESOLVED_RETENTION_S", float),
            "order_retention_s": ("ORDER_RETENTION_S", float),
            # issue 13 (EDGE)
            "hello_timeout_s": ("HELLO_TIMEOUT_S", float),
            "max_sockets_per_user": ("MAX_SOCKETS_PER_USER", int),
            "max_sockets_per_ip": ("MAX_SOCKETS_PER_IP", int),
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
                           ("trusted_proxies", "TRUSTED_PROXIES")):
            if _env(name):
                setattr(c, attr, _list(_env(name)))
        if _env("WEB_ROOT"):
            c.web_root = Path(_env("WEB_ROOT"))
        if _env("DRAIN_S"):
            c.drain_s = float(_env("DRAIN_S"))
        if _env("REPLIES_FILE"):
            c.replies_file = Path(_env("REPLIES_FILE"))
        if _env("ROOMS"):
            c.rooms = [Path(p) for p in _list(_env("ROOMS"))]
        for attr, name in (("compensation_limits", "COMPENSATION_LIMITS"),
                           ("agent_capacities", "AGENT_CAPACITIES")):
            if _env(name):
                setattr(c, attr, _json_object(name, _env(name)))
        if _env("DEV"):
            c.dev = _env("DEV") not in ("0", "false", "no")
        for k, v in overrides.items():
            if v is not None:
                setattr(c, k, v)
        return c

    def validate(self) -> "Config":
        """Refuse unsafe or inconsistent settings with a message that says what to do."""
        if self.dev:
            if not _is_loopback(self.host):
                raise ConfigError(
                    f"--dev hands out tokens to anyone and is only allowed on a loopback host; "
                    f"{self.host!r} is not loopback. Drop --dev and set LIVEDESK_SECRET instead.")
            if not self.secret:
                self.secret = secrets.token_urlsafe(32)
        elif not self.secret:
            raise ConfigError("LIVEDESK_SECRET is not set. Set it to a long random string "
                              "(tokens are signed with it), or use --dev on 127.0.0.1 for a demo.")
        if self.media_mode not in ("passthrough", "transcode"):
            raise ConfigError("--media-mode must be passthrough or transcode")
        if self.loop not in ("auto", "uvloop", "asyncio"):
            raise ConfigError("LIVEDESK_LOOP must be auto, uvloop or asyncio")
        if self.resolved_retention_s < 0:
            raise ConfigError("LIVEDESK_RESOLVED_RETENTION_S must be 0 (keep forever) or a "
                              "number of seconds")
        if self.order_retention_s < 0:
            raise ConfigError("LIVEDESK_ORDER_RETENTION_S must be 0 (keep forever) or a "
                              "number of seconds")
        # issue 13 (EDGE): the edge's socket limits
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
        if self.udp_port_min and self.udp_port_max and self.udp_port_min > self.udp_port_max:
            raise ConfigError("LIVEDESK_UDP_PORT_MIN must not exceed LIVEDESK_UDP_PORT_MAX")
        if self.turn_urls and not self.turn_secret:
            raise ConfigError("LIVEDESK_TURN_URLS needs LIVEDESK_TURN_SECRET (TURN REST API secret)")
        if not self.node_id:
            self.node_id = f"{os.uname().nodename}-{os.getpid()}"
        if not self.public_url:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
            self.public_url = f"http://{host}:{self.port}"
        return self


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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def field_names() -> list[str]:
    return [f.name for f in fields(Config)]
