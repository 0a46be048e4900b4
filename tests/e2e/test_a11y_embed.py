"""Issue 18: the embeddable widget (``/embed`` in a shop's page, another site) passes the same
checks as the other pages (tests/e2e/page_checks.py): axe-core with 0 critical and 0 serious
violations, and the locale scan, in zh and en — signed in by the shop, idle and chatting
with the bot. It needs the shop set-up of tests/e2e/test_embed.py (accounts, a registered
origin), hence its own module rather than a state of the dev walk in test_a11y_locale.py."""

from __future__ import annotations

import pytest

from .conftest import DESKTOP, open_page, wait_online
from .page_checks import axe_violations, blocking, scan_problems, ui_texts
from .test_a11y_locale import PRODUCT_DATA
from .test_embed import embed_frame, gw, site  # noqa: F401  (the shop set-up's fixtures)

pytestmark = [pytest.mark.browser]

T = 15_000


async def problems(frame, lang: str, state: str) -> list[str]:
    out = [f"{lang}/embed_{state}: [{v['impact']}] {v['id']} at {[n['target'] for n in v['nodes']]}"
           for v in blocking(await axe_violations(frame))]
    data = [*PRODUCT_DATA, "alice", "acme:alice"]
    out += [f"{lang}/embed_{state}: {p}" for p in scan_problems(await ui_texts(frame), lang, data)]
    return out


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_embedded_widget_is_accessible_and_in_one_language(gw, site, browser, artifacts, lang):  # noqa: F811
    logs: list[str] = []
    page = await open_page(browser, "about:blank", DESKTOP, logs=logs)
    # the shop chooses the widget's language: LiveDesk.configure({lang}) (docs/embedding.md),
    # queued before widget.js loads, as the snippet's stub does
    await page.context.add_init_script(
        f"if (location.origin === {site.origin!r}) "
        f"window.LiveDesk = {{q: [['configure', [{{lang: {lang!r}}}]]]}};")
    await page.goto(f"{site.origin}/?sub=alice")
    launcher = page.locator('[data-testid="livedesk-launcher"]')
    await launcher.wait_for(timeout=T)
    frame = await embed_frame(page)
    await wait_online(frame)
    found: list[str] = []
    await launcher.click()
    await frame.wait_for_selector('[data-testid="conv-state"][data-state="bot"]', timeout=T)
    found += await problems(frame, lang, "idle")
    await frame.fill('[data-testid="chat-input"]', "这件有M码吗" if lang == "zh" else "is M in stock?")
    await frame.click('[data-testid="chat-send"]')
    await frame.wait_for_selector('[data-testid="msg-bot"]', timeout=T)
    found += await problems(frame, lang, "chatting")
    await page.screenshot(path=str(artifacts / f"a11y_{lang}_embed.png"))
    assert not found, "\n".join(found)
    errors = [line for line in logs if line.startswith("pageerror")]
    assert not errors, errors
