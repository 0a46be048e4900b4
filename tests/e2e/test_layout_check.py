"""The generic layout check (layout_check.py) catches what it claims, and only that.

Small static pages in real Chromium, no gateway: each broken page holds exactly one kind of
fault and must be reported with that rule and that element; the correct page — ellipsis with
its full text in ``title``, a horizontal scroll region, a collapsed panel, an sr-only label,
a drawer parked off-screen, a long page that scrolls vertically — must give no problem.
"""

from __future__ import annotations

import re

import pytest

from .layout_check import layout_report

pytestmark = pytest.mark.browser

PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
  * {{ box-sizing: border-box; }} body {{ margin: 0; font: 16px sans-serif; }}
  .box {{ width: 200px; border: 1px solid #999; padding: 4px; }}
  button {{ font: inherit; }}
</style></head><body>{body}</body></html>"""

CORRECT = """
<header class="box" style="display:flex; gap:4px; width:360px">
  <h1 style="font-size:18px; margin:0">Title</h1>
  <button>Save</button><button aria-label="Close">×</button>
  <span class="badge" style="border-radius:9px; background:#eee; white-space:nowrap">3 new</span>
</header>
<div class="box"><b style="display:block; white-space:nowrap; overflow:hidden; text-overflow:ellipsis"
   title="A very long customer name that does not fit in two hundred pixels">A very long customer name that does not fit in two hundred pixels</b></div>
<div class="box" style="overflow-x:auto; white-space:nowrap"><button>one</button> <button>two</button>
   <button>three</button> <button>four</button> <button>five</button> <button>six</button></div>
<div class="box" style="max-height:0; padding:0; border:0; overflow:hidden"><button>collapsed</button></div>
<label><span style="position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0)">Search the
   conversation history for a word</span><input value="a value longer than the field is wide, which scrolls"></label>
<input style="width:120px" placeholder="Search">
<aside style="position:fixed; top:0; left:-400px; width:300px"><button>drawer</button></aside>
<div class="box" style="height:100px; overflow:hidden; padding:0"><div id="sc" style="height:98px; overflow-y:auto">
   <p>a chat log scrolled half-way: this line is cut by the log's top</p><p>two</p><p>three</p><p>four</p><p>five</p></div></div>
<div style="height:2000px"><p>Long page: vertical scrolling is fine.</p></div>
<script>document.getElementById("sc").scrollTop = 25;</script>
"""

BROKEN = {
    # a button whose label is wider than the button
    "overflow": '<button style="width:60px; white-space:nowrap; overflow:visible" data-testid="bad">Resolve conversation</button>',
    # a button half outside a hidden-overflow toolbar
    "clipped": '<div class="box" style="overflow:hidden; display:flex"><span style="flex:none; width:170px">x</span>'
               '<button style="flex:none" data-testid="bad">Hang up</button></div>',
    # ellipsis with no title/aria-label: the full text is lost
    "ellipsis": '<div class="box"><b data-testid="bad" style="display:block; white-space:nowrap; overflow:hidden;'
                ' text-overflow:ellipsis">A very long customer name that does not fit in two hundred pixels</b></div>',
    # partly outside the viewport (the page's sideways scroll is reported on a line of its own)
    "off-screen": '<div style="position:relative; left:320px; width:200px"><button data-testid="bad">Accept call</button></div>',
    # a fixed bottom sheet taller than the screen cannot be scrolled: its last button is cut
    "fixed": '<section style="position:fixed; left:0; right:0; top:350px; height:300px"><p style="height:200px">sheet</p>'
             '<button data-testid="bad">Send</button></section>',
    # an absolutely positioned badge cut by its positioned, hidden-overflow card
    "abs-clipped": '<div class="box" style="position:relative; height:40px; overflow:hidden">card'
                   '<span class="badge" data-testid="bad" style="position:absolute; top:30px; left:4px">99+</span></div>',
    # an empty field whose hint does not fit: the placeholder is cut
    "placeholder": '<input data-testid="bad" style="width:120px" placeholder="rooms, comma-separated, e.g. demo,shop-2">',
    # a chat log taller than the sheet that hides its overflow: the log's end is out of reach
    "region-clipped": '<div class="box" style="height:100px; overflow:hidden; padding:0">'
                      '<div data-testid="bad" style="height:200px; overflow-y:auto"><p>one</p></div></div>',
}


RULE = {"overflow": "overflow:", "clipped": "clipped:", "ellipsis": "overflow:", "off-screen": "off-screen:",
        "fixed": "off-screen:", "abs-clipped": "clipped:", "region-clipped": "clipped:", "placeholder": "overflow:"}


async def report_for(page, body: str) -> dict:
    await page.set_content(PAGE.format(body=body))
    return await layout_report(page)


# one browser page for every case (a Chromium start costs more than all the checks)
async def test_the_layout_check_flags_each_fault_and_passes_a_correct_page(browser):
    ctx = await browser.new_context(viewport={"width": 390, "height": 400})
    page = await ctx.new_page()
    try:
        r = await report_for(page, CORRECT)
        assert r["problems"] == []
        # the check did look: the header's heading, buttons and badge, the names, the scrolling row
        assert r["checked"] >= 12, r

        for fault, body in sorted(BROKEN.items()):
            r = await report_for(page, body)
            mine = [p for p in r["problems"] if 'data-testid="bad"' in p]
            assert mine, (fault, r["problems"])
            assert all(p.startswith(RULE[fault]) for p in mine), (fault, mine)
            # the report names the element, its text and its rectangle
            assert re.search(r'"[^"]+" \(x -?\d+\.\.-?\d+, y -?\d+\.\.-?\d+\)', mine[0]), mine[0]

        r = await report_for(page, '<div style="width:600px">a wide table row</div>')
        assert "page scrolls sideways: the document is 600 px wide in a 390 px viewport" in r["problems"], r
    finally:
        await ctx.close()
