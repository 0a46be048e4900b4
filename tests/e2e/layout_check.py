"""A generic layout check for any rendered page: nothing a person reads or uses is cut off.

Issue 18 (build item 9) asks for layout assertions "that fail when an element overflows its
container or is clipped", on every page and state at three sizes. The console test
(test_console_layout.py) names the elements it checks; this one needs no list, so a new
button on any page is covered the day it is added.

Which elements: every visible interactive control (button, link, input, select, textarea,
summary, the ARIA widget roles), heading, label/legend, badge (a class holding ``badge``,
``pill`` or ``chip``) and text leaf (an element with text of its own). For each, a problem is:

- ``overflow`` — its content is wider than its own box (``scrollWidth > clientWidth``) and
  the element does not scroll by design (``overflow-x: auto/scroll``; inputs and textareas
  scroll their value — but an empty input's placeholder does not, so a placeholder wider than
  its field is reported too). ``text-overflow: ellipsis`` is allowed only when the element or a box
  around it carries the full text in ``title`` or ``aria-label``.
- ``clipped`` — part of it lies outside an ancestor whose overflow is ``hidden`` or ``clip``
  on that axis (the containing-block chain is followed, so an absolutely positioned badge is
  judged by the boxes that really clip it). Scroll regions (``auto``/``scroll``) clip by
  design and are not problems; an element clipped away entirely is a collapsed panel and is
  not reported.
- ``off-screen`` — it lies partly outside the viewport horizontally (vertical scrolling of
  the page is fine), or, inside a fixed layer that cannot scroll, partly outside it
  vertically (a bottom sheet's button cut by the screen's edge cannot be scrolled into view).
- ``page scrolls sideways`` — the document is wider than the viewport.

Visually hidden helpers (a 1 px box, or ``clip``/``clip-path`` on the way up: the screen
reader only pattern) are not what a person sees and are skipped. Everything is measured
after running CSS transitions/animations have finished (infinite ones excepted), so a drawer
half-way through sliding in is not a finding.

``problems`` returns readable lines — the rule, the element's selector path, its text and
the rectangles involved — so a failure says what to fix without opening the screenshot.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# the screenshot matrix's sizes: a phone, a laptop, a desktop (issue 18)
MATRIX = ((390, 844), (1280, 800), (1440, 900))


def screens_dir() -> Path:
    """Where the matrix's screenshots go: ``$LIVEDESK_ARTIFACTS/screens`` or, by default,
    ``test-artifacts/screens`` at the repository's root (ignored by git)."""
    return Path(os.environ.get("LIVEDESK_ARTIFACTS") or ROOT / "test-artifacts") / "screens"


async def fast_png(page) -> bytes:
    """The viewport as a PNG, encoded for speed (CDP ``Page.captureScreenshot`` with
    ``optimizeForSpeed``): 4× faster than ``page.screenshot`` on the viewer's blurred stream
    background at 1440×900 (0.1 s against 0.4 s, measured), for files about twice as big.
    The matrix takes 144 of them per run, so this is most of its cost."""
    cdp = getattr(page, "_livedesk_cdp", None)
    if cdp is None:
        cdp = await page.context.new_cdp_session(page)
        page._livedesk_cdp = cdp
    r = await cdp.send("Page.captureScreenshot", {"format": "png", "optimizeForSpeed": True})
    return base64.b64decode(r["data"])


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk: a screenshot is checked to be the size its
    name says."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError("not a PNG")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


# the tolerance for sub-pixel rounding, in CSS pixels
SLACK = 1

LAYOUT_JS = """(slack) => {
  const CONTROL = 'button, a[href], input:not([type=hidden]), select, textarea, summary, '
    + '[role=button], [role=link], [role=tab], [role=checkbox], [role=radio], [role=switch], '
    + '[role=menuitem], [role=option], [role=slider], [role=separator][tabindex], [role=combobox], [tabindex]:not([tabindex="-1"])';
  const HEADING = 'h1, h2, h3, h4, h5, h6, [role=heading]';
  const LABEL = 'label, legend, caption, th, dt';
  const BADGE = '[class*=badge], [class*=pill], [class*=chip]';
  const SCROLLS = new Set(['auto', 'scroll']);
  const CLIPS = new Set(['hidden', 'clip']);
  const vw = document.documentElement.clientWidth, vh = document.documentElement.clientHeight;
  const out = [];
  const rect = (r) => `(x ${Math.round(r.left)}..${Math.round(r.right)}, y ${Math.round(r.top)}..${Math.round(r.bottom)})`;
  const seg = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) return s + '#' + el.id;
    if (el.dataset && el.dataset.testid) return s + `[data-testid="${el.dataset.testid}"]`;
    const cls = typeof el.className === 'string' ? el.className.trim().split(/\\s+/).filter(Boolean) : [];
    if (cls.length) s += '.' + cls.slice(0, 2).join('.');
    const p = el.parentElement;
    if (p) {
      const same = [...p.children].filter((c) => c.tagName === el.tagName);
      if (same.length > 1) s += `:nth-of-type(${same.indexOf(el) + 1})`;
    }
    return s;
  };
  const path = (el) => {
    const parts = [];
    for (let e = el; e && e !== document.body && parts.length < 5; e = e.parentElement) {
      parts.unshift(seg(e));
      if (e.id || (e.dataset && e.dataset.testid)) break;
    }
    return parts.join(' > ');
  };
  const text = (el) => {
    const t = (el.value !== undefined && el.tagName !== 'BUTTON' && el.tagName !== 'LI' ? String(el.value || el.placeholder || '')
              : el.textContent || '').replace(/\\s+/g, ' ').trim();
    return t.length > 40 ? t.slice(0, 39) + '…' : t;
  };
  const fullText = (el) => (el.textContent || '').replace(/\\s+/g, ' ').trim();
  // the full text is still there for a person: in the title (a tooltip) or aria-label of the
  // element or of a box around it (a reply button whose title holds the cut line)
  const named = (el, t) => {
    for (let e = el; e && e !== document.body; e = e.parentElement) {
      for (const a of ['title', 'aria-label']) {
        const v = (e.getAttribute(a) || '').replace(/\\s+/g, ' ').trim();
        if (v && t && v.includes(t)) return true;
      }
    }
    return false;
  };
  // one computed style per element for the whole pass (ancestors are shared by many candidates)
  const styles = new Map();
  const getComputedStyle = (el) => {
    let cs = styles.get(el);
    if (!cs) { cs = window.getComputedStyle(el); styles.set(el, cs); }
    return cs;
  };
  const visible = (el) => el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true});
  const ownText = (el) => [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());

  const ctx = document.createElement('canvas').getContext('2d');  // measures placeholders

  // 1. the candidates
  const set = new Set([...document.body.querySelectorAll(`${CONTROL}, ${HEADING}, ${LABEL}, ${BADGE}`)]);
  for (const el of document.body.querySelectorAll('*')) {
    if (['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'OPTION'].includes(el.tagName)) continue;
    if (ownText(el)) { set.add(el); continue; }
    const cs = getComputedStyle(el);  // a scroll region: its own box must be whole
    if (SCROLLS.has(cs.overflowX) || SCROLLS.has(cs.overflowY)) set.add(el);
  }
  let checked = 0;
  for (const el of set) {
    if (!visible(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.width <= 1 || r.height <= 1) continue;  // visually hidden helper (sr-only)

    // 2. the way up: clipping ancestors (following the containing-block chain), scroll
    //    regions, fixed layers, visually hidden wrappers
    let srOnly = false, gone = false, hscroll = false, fixedLayer = null, scrollInLayer = false;
    // past a scroll region on an axis, the element's place on that axis is the region's
    // business (scrolled out of view is fine); the region itself is a candidate of its own
    let scrolledX = false, scrolledY = false;
    const clips = [];
    let pos = getComputedStyle(el).position;
    let needPositioned = pos === 'absolute';
    if (pos === 'fixed') fixedLayer = el;
    for (let a = el.parentElement; a && a !== document.documentElement && !fixedLayer; a = a.parentElement) {
      const cs = getComputedStyle(a);
      if (cs.clip !== 'auto' || cs.clipPath !== 'none') { srOnly = true; break; }
      const containing = cs.position !== 'static' || cs.transform !== 'none' || cs.filter !== 'none'
        || cs.contain.includes('paint') || cs.contain.includes('layout');
      if (needPositioned && !containing) continue;  // it neither contains nor clips an absolute box
      needPositioned = cs.position === 'absolute';
      if (a === document.body) { if (cs.position === 'fixed') fixedLayer = a; break; }
      const ar = a.getBoundingClientRect();
      const clipX = CLIPS.has(cs.overflowX) && !scrolledX, clipY = CLIPS.has(cs.overflowY) && !scrolledY;
      if (clipX || clipY) {
        if (ar.width <= 1 || ar.height <= 1) { srOnly = true; break; }
        clips.push([a, clipX, clipY, cs, ar]);
      }
      if (SCROLLS.has(cs.overflowX)) { hscroll = true; scrolledX = true; }
      if (SCROLLS.has(cs.overflowY)) scrolledY = true;
      if (SCROLLS.has(cs.overflowY) || SCROLLS.has(cs.overflowX)) scrollInLayer = true;
      if (cs.position === 'fixed') fixedLayer = a;
    }
    if (srOnly) continue;
    // clipped away entirely by one box: a collapsed panel, not a cut-off control
    for (const [a, clipX, clipY, , ar] of clips) {
      const cl = ar.left + a.clientLeft, ct = ar.top + a.clientTop;
      const cr = cl + a.clientWidth, cb = ct + a.clientHeight;
      if ((clipX && (r.right <= cl || r.left >= cr)) || (clipY && (r.bottom <= ct || r.top >= cb))) { gone = true; break; }
    }
    if (gone) continue;
    if (r.right <= 0 || r.left >= vw) continue;  // parked off-screen (a closed off-canvas drawer)
    checked++;
    const what = () => `${path(el)} "${text(el)}" ${rect(r)}`;
    const cs = getComputedStyle(el);

    // 3. its own box
    const scrollsItself = SCROLLS.has(cs.overflowX) || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName);
    if (!scrollsItself && cs.display !== 'inline' && el.scrollWidth > el.clientWidth + slack) {
      if (cs.textOverflow === 'ellipsis' && CLIPS.has(cs.overflowX)) {
        if (!named(el, fullText(el)))
          out.push(`overflow: ${what()}: cut with an ellipsis (${el.scrollWidth} > ${el.clientWidth} px) and no title/aria-label with the full text`);
      } else {
        out.push(`overflow: ${what()}: content ${el.scrollWidth} px wide in a ${el.clientWidth} px box`);
      }
    }

    // an empty field shows its placeholder, which does not scroll: cut, the hint is lost
    // (a title holding it, shown on hover, is the only excuse)
    if (el.tagName === 'INPUT' && !el.value && el.placeholder) {
      ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
      const need = ctx.measureText(el.placeholder).width;
      const room = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
      if (need > room + slack && !(el.title || '').includes(el.placeholder))
        out.push(`overflow: ${what()}: placeholder ${Math.ceil(need)} px wide in a ${Math.floor(room)} px field`);
    }

    // 4. clipped by an ancestor
    for (const [a, clipX, clipY, acs, ar] of clips) {
      const cl = ar.left + a.clientLeft, ct = ar.top + a.clientTop;
      const cr = cl + a.clientWidth, cb = ct + a.clientHeight;
      const cutX = clipX && (r.left < cl - slack || r.right > cr + slack);
      const cutY = clipY && (r.top < ct - slack || r.bottom > cb + slack);
      if (!cutX && !cutY) continue;
      // the ancestor ellipsizes this text and names it in full: an allowed, announced cut
      if (cutX && !cutY && acs.textOverflow === 'ellipsis' && (named(a, fullText(a)) || named(el, fullText(el)))) continue;
      out.push(`clipped: ${what()}: cut ${cutX ? 'horizontally' : 'vertically'} by ${path(a)} ${rect({left: cl, top: ct, right: cr, bottom: cb})} (overflow ${acs.overflowX}/${acs.overflowY})`);
      break;
    }

    // 5. the viewport
    if (!hscroll && (r.left < -slack || r.right > vw + slack))
      out.push(`off-screen: ${what()}: partly outside the ${vw} px wide viewport`);
    if (fixedLayer && !scrollInLayer && (r.top < -slack || r.bottom > vh + slack))
      out.push(`off-screen: ${what()}: partly outside the ${vh} px high viewport in a fixed layer that cannot scroll`);
  }
  const dw = document.documentElement.scrollWidth;
  if (dw > vw + slack) out.push(`page scrolls sideways: the document is ${dw} px wide in a ${vw} px viewport`);
  return {problems: out, checked};
}"""

# waits until running transitions/animations (not infinite ones) have finished, at most 2 s
SETTLE_JS = """async () => {
  const finite = document.getAnimations().filter((a) => a.playState === 'running'
      && a.effect && a.effect.getComputedTiming().endTime !== Infinity);
  await Promise.race([Promise.all(finite.map((a) => a.finished.catch(() => null))),
                      new Promise((r) => setTimeout(r, 2000))]);
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
}"""


async def settle(page) -> None:
    """Let a resize's layout pass and any finite transition finish before measuring."""
    await page.evaluate(SETTLE_JS)


async def layout_report(page) -> dict:
    """``{"problems": [...], "checked": n}`` for the page as it is now (see the module doc)."""
    await settle(page)
    return await page.evaluate(LAYOUT_JS, SLACK)


async def layout_problems(page) -> list[str]:
    return (await layout_report(page))["problems"]
