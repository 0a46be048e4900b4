"""The offline bot: the default :class:`~gateway.support.responder.Responder`.

Owns the pipeline for one viewer message - normalise, detect language, extract slots,
carry context from history, apply the escalation rules, pick the intent, compose a reply
from the live knowledge and judge the mood. It is pure CPU work of well under a
millisecond per message once warmed up (less again for what it has read before: see
:mod:`.memo`), so ``respond`` runs it inline on the event loop;
``warm_up`` (jieba's dictionary, the classifier) is slow once and belongs in an executor
at start-up.
"""

from __future__ import annotations

import time

from ..responder import BotQuery, BotReply
from . import lexicon
from .answers import Ctx, compose
from .cues import cue_scores
from .features import load_jieba
from .intent import classify
from .memo import TextMemo
from .model import BotModel, get_model
from .mood import detect_mood
from .multiturn import resolve
from .normalize import detect_lang, normalize
from .slots import extract


class OfflineBot:
    """Rules + a small numpy classifier; no network, no model server.

    ``memo=False`` reads every message afresh (the reference the memo is tested against).
    ``model``: the trained parts (default: the process-wide model, trained on the whole
    corpus); the held-out evaluation passes one trained without the writers it scores."""

    def __init__(self, memo: bool = True, model: BotModel | None = None) -> None:
        self._warm = False
        self._model = model
        self.memo = TextMemo(lambda: self.model) if memo else None

    @property
    def model(self) -> BotModel:
        if self._model is None:
            self._model = get_model()
        return self._model

    def warm_up(self) -> float:
        """Load jieba and the model; returns the seconds it took. Safe to call twice."""
        t0 = time.perf_counter()
        load_jieba()
        lexicon.load()
        self.model.probs("")
        self._warm = True
        return time.perf_counter() - t0

    async def respond(self, query: BotQuery) -> BotReply:
        return self.answer(query)

    def _prev_intent(self, prev_text: str | None, kb) -> str | None:  # noqa: ANN001
        if not prev_text:
            return None
        s = extract(prev_text, kb)
        m = self.model
        return classify(prev_text, s, m.escalation_of(prev_text), probs=m.probs(prev_text)).intent

    def answer(self, query: BotQuery) -> BotReply:
        if not self._warm:
            self.warm_up()
        kb = query.knowledge
        lang = query.lang if query.lang in ("zh", "en") else detect_lang(query.text)
        if self.memo is None:
            text = normalize(query.text)
            slots = extract(text, kb)
            ctx = resolve(slots, text, list(query.history or []), kb)
            esc = self.model.escalation_of(text)
            cues = cue_scores(text)
            dec = classify(text, slots, esc, self._prev_intent(ctx.prev_text, kb),
                           probs=self.model.probs(text), cues=cues)
        else:
            view = self.memo.view(kb)
            text = self.memo.normalize(query.text)
            seen = view.seen(text)
            slots = view.slots(seen)
            ctx = resolve(slots, text, list(query.history or []), kb, analyse=view.analyse)
            esc = seen.esc
            prev = view.seen(ctx.prev_text).intent if ctx.prev_text else None
            cues = seen.cues
            dec = seen.decide(slots, prev)
        escalate = esc.escalate or dec.intent == "human_request"
        reasons = list(esc.reasons) or (["human"] if dec.intent == "human_request" else [])
        reply = compose(dec.intent, Ctx(kb=kb, text=text, lang=lang, slots=slots, escalate=escalate,
                                        reasons=reasons, cues=cues))
        out_slots = slots.as_dict()
        if reasons:
            out_slots["escalation_reasons"] = reasons
        return BotReply(intent=dec.intent, escalate=escalate, text=reply,
                        mood=detect_mood(text, dec.intent, reasons), lang=lang, slots=out_slots)
