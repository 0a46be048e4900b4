"""What the bot reads out of one message on its own, remembered.

Owns the bot's per-text work that does not depend on the conversation: normalising a
message, its slots (which products, size, body, order id), the escalation rule, the
classifier's and the lexicon's scores, and its context-free intent. In a conversation
every earlier viewer message was once the current one, and the bot re-reads up to six of
them per turn; during a flash sale many viewers also ask the very same short questions.
Remembering this work is what keeps the bot's cost per answer flat (it was ~0.7 ms with
history, ~0.3 ms without, on the serving loop: the limit of the flash-sale burst).

Correctness rests on two facts, both tested: everything remembered is a pure function of
the text and of the catalog's *naming* (``slots.catalog_key``: skus, names, sizes,
attributes; not stock, prices or promotions, which change live), and what is remembered
is never handed out for mutation: products are re-mapped to the room's live objects (so
stock is read at answer time) and slots are copied.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..knowledge import Knowledge
from .cues import cue_scores
from .escalation import EscalationDecision
from .intent import IntentDecision, classify
from .model import BotModel
from .normalize import normalize
from .slots import Body, Slots, catalog_key, extract

# intent decisions remembered per text (one per previous intent and body/hair context)
DECISIONS = 16


@dataclass
class Seen:
    """One normalised message against one catalog. Filled lazily: an earlier message
    needs only its slots (and, for the previous one, its intent)."""

    text: str
    slots: Slots
    model: BotModel
    _esc: EscalationDecision | None = None
    _probs: dict[str, float] | None = None
    _cues: dict[str, float] | None = None
    _intent: str | None = None
    _decisions: dict[tuple, IntentDecision] | None = None

    @property
    def esc(self) -> EscalationDecision:
        if self._esc is None:
            self._esc = self.model.escalation_of(self.text)
        return self._esc

    @property
    def probs(self) -> dict[str, float]:
        if self._probs is None:
            self._probs = self.model.probs(self.text)
        return self._probs

    @property
    def cues(self) -> dict[str, float]:
        if self._cues is None:
            self._cues = cue_scores(self.text)
        return self._cues

    @property
    def intent(self) -> str:
        """The intent of this message read without a previous one."""
        if self._intent is None:
            self._intent = classify(self.text, self.slots, self.esc, None,
                                    probs=self.probs, cues=self.cues).intent
        return self._intent

    def decide(self, slots: Slots, prev_intent: str | None) -> IntentDecision:
        """The intent decision of this message in a conversation. ``classify`` reads the
        text's own scores (here already), the previous intent and, of the slots the
        conversation resolved, only the body measurements and the hair length: those and
        the previous intent are the key (a handful per text: ``DECISIONS`` at most). The
        decision is shared: read it, do not change it."""
        key = (slots.body.height_cm, slots.body.weight_kg, slots.hair, prev_intent)
        if self._decisions is None:
            self._decisions = {}
        d = self._decisions.get(key)
        if d is None:
            d = classify(self.text, slots, self.esc, prev_intent, probs=self.probs, cues=self.cues)
            if len(self._decisions) >= DECISIONS:
                self._decisions.clear()
            self._decisions[key] = d
        return d


class _Lru(OrderedDict):
    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def put(self, key, value):
        self[key] = value
        if len(self) > self.cap:
            self.popitem(last=False)
        return value

    def hit(self, key):
        v = self.get(key)
        if v is not None:
            self.move_to_end(key)
        return v


class TextMemo:
    """Bounded memory of :class:`Seen` per (catalog, normalised text), and of normalised
    forms per raw text. One per bot; used from the event loop only (no locking).

    One budget of ``texts`` entries across all catalogs, so a node serving many rooms
    shares it rather than thrashing a per-room slot; catalogs are numbered (``catalogs``
    of them remembered) so entries do not repeat the catalog key."""

    def __init__(self, model: Callable[[], BotModel], texts: int = 16384,
                 catalogs: int = 256) -> None:
        self._model = model  # the bot's (resolved on first use: training may be slow)
        self._norm = _Lru(texts)
        self._seen = _Lru(texts)  # (catalog number, text) -> Seen
        self._catalogs = _Lru(catalogs)  # catalog_key -> its number
        self._next_catalog = 0
        self.hits = 0
        self.misses = 0

    @property
    def model(self) -> BotModel:
        return self._model()

    def view(self, kb: Knowledge) -> CatalogView:
        """The memo as seen from one answer: the catalog key is computed once per answer."""
        key = catalog_key(kb)
        number = self._catalogs.hit(key)
        if number is None:  # new (or forgotten: its old entries age out of the LRU unused)
            self._next_catalog += 1
            number = self._catalogs.put(key, self._next_catalog)
        return CatalogView(self, kb, number)

    def normalize(self, raw: str) -> str:
        n = self._norm.hit(raw)
        if n is None:
            n = self._norm.put(raw, normalize(raw))
        return n


class CatalogView:
    def __init__(self, memo: TextMemo, kb: Knowledge, catalog: int) -> None:
        self.memo = memo
        self.kb = kb
        self._catalog = catalog
        self._live: dict | None = None

    def seen(self, text: str) -> Seen:
        """``text`` is normalised. The returned object is shared: read it, do not change it."""
        key = (self._catalog, text)
        s = self.memo._seen.hit(key)
        if s is None:
            self.memo.misses += 1
            s = self.memo._seen.put(key, Seen(text, extract(text, self.kb), self.memo.model))
        else:
            self.memo.hits += 1
        return s

    def slots(self, seen: Seen) -> Slots:
        """A private copy of ``seen``'s slots, holding the room's live product objects."""
        s = seen.slots
        live = self._live
        if live is None:
            live = self._live = {p.sku: p for p in self.kb.products}
        return Slots(products=[live.get(p.sku, p) for p in s.products], product_from=s.product_from,
                     strength=s.strength, size=s.size, body=Body(s.body.height_cm, s.body.weight_kg), hair=s.hair,
                     order_id=s.order_id)

    def analyse(self, raw: str) -> tuple[str, Slots]:
        """For :func:`.multiturn.resolve`: an earlier message, normalised and read."""
        n = self.memo.normalize(raw)
        return n, self.slots(self.seen(n))
