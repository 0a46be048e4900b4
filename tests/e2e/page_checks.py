"""Checks run on a rendered page in one of its states: axe-core and the locale scan.

axe-core comes from the npm registry (package.json, pinned; ``make install-test`` runs
``npm ci``): no build step, ``node_modules/axe-core/axe.min.js`` is evaluated in the page and ``axe.run`` is called on the document.

The locale scan reads the text a person sees — visible text nodes plus placeholders, ``title``,
``aria-label`` and ``alt`` — except inside elements marked ``data-user-content`` (what people
typed, names) or ``data-product`` (catalogue data: product names, SKUs, shop texts). What is
allowed in which locale is documented in docs/testing.md ("Locale scan").
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"

# the impacts that fail the check (the issue: 0 critical and 0 serious)
BLOCKING = ("critical", "serious")


def axe_source() -> str:
    """The injected script; a missing install is a failure with the command that fixes it."""
    if not AXE_JS.exists():
        raise AssertionError(f"{AXE_JS} missing: run `npm ci` at the repo root (make install-test does)")
    return AXE_JS.read_text(encoding="utf-8")


RUN_AXE = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations'],
      runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
  return r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => ({target: n.target.join(' '), summary: n.failureSummary}))}));
}"""


async def axe_violations(page) -> list[dict]:
    """Every violation axe-core finds on the page as it is now (all impacts)."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        # evaluated over the DevTools protocol, which the page's CSP (script-src 'self') does not
        # govern: the pages are checked with their real policy, not a weakened one
        await page.evaluate(axe_source() + "\n;void 0")
    return await page.evaluate(RUN_AXE)


def blocking(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in BLOCKING]


# Visible UI text of the page, without user content and product data.
UI_TEXT = """() => {
  const SKIP = '[data-user-content], [data-product], script, style, noscript, template';
  const out = [];
  const visible = (el) => el.checkVisibility ? el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})
                                             : !!el.offsetParent;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    const s = n.textContent.trim();
    if (!s || !el || el.closest(SKIP) || !visible(el)) continue;
    out.push({text: s, where: el.dataset.testid || el.id || el.tagName.toLowerCase()});
  }
  for (const el of document.body.querySelectorAll('[placeholder], [title], [aria-label], img[alt]')) {
    if (el.closest(SKIP) || !visible(el)) continue;
    for (const a of ['placeholder', 'title', 'aria-label', 'alt']) {
      const s = (el.getAttribute(a) || '').trim();
      if (s) out.push({text: s, where: `${el.dataset.testid || el.id || el.tagName.toLowerCase()}@${a}`});
    }
  }
  out.push({text: document.title, where: 'title'});
  return out;
}"""

# the language switch names the other language in that language ("中文" in the en UI)
EN_ALLOWED = frozenset({"中文"})

CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")

# Latin tokens the Chinese UI may show: brand, protocol/technical terms and file formats (JSON,
# CSV) Chinese UIs write in Latin letters, units and currency codes, and the English switch ("EN"). Anything else in
# Latin letters in the zh UI is an untranslated string. Documented in docs/testing.md.
ZH_ALLOWED = frozenset({
    "LiveDesk", "EN", "ID", "SKU", "CSAT", "p50", "p", "ms", "s", "min", "h", "KB", "MB",
    "CNY", "USD", "EUR", "HKD", "TWD", "JPY", "GBP", "Wi-Fi", "WebRTC", "WebSocket", "Enter",
    "Esc", "Ctrl", "Shift", "Alt", "Tab", "Cmd", "QR", "URL", "AI", "x", "JSON", "CSV",
})


def data_strings(*files: Path) -> list[str]:
    """Every string value of the room's and the shop's data files (what the gateway loaded):
    product names, SKUs, promotion texts and codes, FAQ, couriers — product data, shown as is."""
    out: set[str] = set()

    def walk(v) -> None:
        if isinstance(v, str):
            if v.strip():
                out.add(v.strip())
        elif isinstance(v, dict):
            for k, x in v.items():
                out.add(str(k))  # SKUs and order numbers are keys in places
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for f in files:
        walk(json.loads(f.read_text(encoding="utf-8")))
    return sorted(out, key=len, reverse=True)


# {product.D001.stock}: a canned reply's live placeholder, filled from the room when sent
PLACEHOLDER = re.compile(r"\{[\w.]+\}")
# codes a Chinese UI writes as they are: a command-line flag, an environment variable
CODE = re.compile(r"--[a-z][a-z-]*|\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")


def scan_problems(texts: list[dict], lang: str, data: list[str]) -> list[str]:
    """Text in the wrong language: CJK in the en UI, Latin words outside ZH_ALLOWED in zh.

    ``data`` is user content and product data that appears inside UI sentences ("Stock ·
    三合一防水冲锋衣", "客服 Alice 为您服务"): its CJK strings are cut out of the text before the
    check, its Latin words are allowed in zh."""
    cjk_data = [d for d in data if CJK.search(d)]
    latin_ok = ZH_ALLOWED | {w for d in data for w in LATIN_WORD.findall(d)}
    bad: list[str] = []
    for item in texts:
        s = CODE.sub(" ", PLACEHOLDER.sub(" ", item["text"]))
        for d in cjk_data:
            if d in s:
                s = s.replace(d, " ")
        if lang == "en":
            if CJK.search(s) and s.strip() not in EN_ALLOWED:
                bad.append(f"{item['where']}: {item['text']!r}")
        else:
            # single letters are sizes ("M码"), initials on avatars and units: not words
            words = [w for w in LATIN_WORD.findall(s) if len(w) > 1 and w not in latin_ok]
            if words:
                bad.append(f"{item['where']}: {item['text']!r} ({', '.join(words)})")
    return bad


async def ui_texts(page) -> list[dict]:
    return await page.evaluate(UI_TEXT)
