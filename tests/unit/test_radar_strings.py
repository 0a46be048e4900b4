"""The radar's string table (web/js/i18n_radar.js) has every key in both languages, and
every key the radar's pages ask for exists (a missing one would show the bare key)."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.support.anomaly import KINDS
from gateway.support.radar import WINDOWS

WEB = Path(__file__).resolve().parents[2] / "web" / "js"
KEY = re.compile(r'^\s*"(radar\.[\w.]+)":', re.M)


def tables() -> dict[str, set[str]]:
    src = (WEB / "i18n_radar.js").read_text(encoding="utf-8")
    zh, en = src.split("\n  en: {", 1)
    return {"zh": set(KEY.findall(zh)), "en": set(KEY.findall(en))}


def test_both_languages_have_the_same_keys():
    t = tables()
    assert t["zh"] and t["zh"] == t["en"], t["zh"] ^ t["en"]


def test_every_key_the_pages_use_exists():
    keys = tables()["zh"]
    used: set[str] = set()
    for f in ("radar_view.js", "dashboard.js"):
        src = (WEB / f).read_text(encoding="utf-8")
        # tr("radar.a"), trNodes(...), trCount(...), and keys chosen by a ternary inside the call
        for args in re.findall(r'\btr(?:Nodes|Count)?\(([^()]*)', src):
            used |= set(re.findall(r'"(radar\.[\w.]+)"', args))
        used |= set(re.findall(r'"(radar\.ev\.[\w.]+)"', src))  # handed to addEvent
    # keys built from a value: every value the server sends
    used |= {f"radar.window.{w}" for w in WINDOWS}
    used |= {f"radar.flag.kind.{k}" for k in KINDS}
    used |= {f"radar.flag.basis.{b}" for b in ("own", "room", "floor")}
    used |= {f"radar.reason.{r}" for r in ("message_rate", "queue", "calm")}
    used |= {f"radar.trend.{d}" for d in ("up", "down")}
    used |= {f"{k}.one" for k in ("radar.viewers", "radar.messages", "radar.since_pin")}
    assert used - keys == set()
    assert len(used) > 40
