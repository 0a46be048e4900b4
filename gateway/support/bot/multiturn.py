"""Conversation context: what earlier viewer messages say about the current one.

Owns resolving references across turns. "那这个还有库存吗" or "what about the blue one" name
no product, so the product comes from the most recent earlier viewer message that named
one (then from the product on screen). Body measurements and hair length given earlier
carry over ("160 100斤" ... "那裤子呢"), and the intent of the previous message is
offered to :mod:`.intent` for elliptical follow-ups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..knowledge import Knowledge
from .normalize import normalize
from .slots import Slots, extract, find_size

# product-name strengths (slots.find_products_scored): below WEAK_TEXT the current
# message named its product only by a 2-character piece or an attribute word; at or above
# STRONG_EARLIER an earlier message named one by a longer piece of its name, a link or SKU
WEAK_TEXT = 2.01
STRONG_EARLIER = 3.0


@dataclass
class Context:
    prev_text: str | None = None
    prev_slots: Slots | None = None


def _analyse(h: str, kb: Knowledge) -> tuple[str, Slots]:
    n = normalize(h)
    return n, extract(n, kb)


def resolve(slots: Slots, text: str, history: list[str], kb: Knowledge,
            analyse: Callable[[str], tuple[str, Slots]] | None = None) -> Context:
    """Fill in missing product/body slots of ``slots`` from history (newest first), in place.

    ``analyse(raw) -> (normalised, slots)`` is how an earlier message is read; the bot
    passes its memo (every earlier message was once the current one). The slots it
    returns must be the caller's to keep (fresh, or the memo's private copy): their
    products and body may end up in ``slots``."""
    ctx = Context()
    read = analyse or (lambda h: _analyse(h, kb))
    earlier = [h for h in history[-6:] if h and h.strip()]
    need_product = not slots.products
    # a product the text names only weakly (a word of its attributes, "充电" of 充电宝) yields
    # to one an earlier message named outright: "洗脸仪" ... "充电是什么接口的"
    weak = bool(slots.products) and slots.strength < WEAK_TEXT
    need_body = slots.body.height_cm is None and slots.body.weight_kg is None
    for i, h in enumerate(reversed(earlier)):
        n, hs = read(h)
        if i == 0:
            ctx.prev_text, ctx.prev_slots = n, hs
        if need_product and hs.products:
            slots.products = hs.products
            slots.product_from = "history"
            need_product = False
        elif weak and hs.products:
            if hs.strength >= STRONG_EARLIER and hs.products != slots.products:
                slots.products = hs.products
                slots.product_from = "history"
            weak = False  # only the newest earlier message that named a product counts
        if need_body and (hs.body.height_cm is not None or hs.body.weight_kg is not None):
            slots.body = hs.body
            need_body = False
        if slots.hair is None and hs.hair:
            slots.hair = hs.hair
        if not need_product and not need_body and not weak:
            break
    if not slots.products and kb.on_screen:
        p = kb.product(kb.on_screen)
        if p is not None:
            slots.products = [p]
            slots.product_from = "screen"
    if slots.size is None and slots.product is not None:
        slots.size = find_size(text, kb, slots.product)
    return ctx
