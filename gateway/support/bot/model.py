"""The bot's trained parts: the intent classifier and the escalation scorer, as one model.

Why a scorer beside the escalation rules: the rules (:mod:`.escalation`) are phrases, and
on rooms written by other people about a quarter of the viewers who needed a person used
words the phrases did not know (a hotline, "the after-sale person", sarcasm, asking again,
a calmly told stinging skin). The scorer is a logistic regression over the same hashed
features as the intent classifier, trained on the labelled corpus (``training/corpus.py``)
plus the template utterances labelled by the README's rule (the rule as training signal).
The bot escalates when the rules fire **or** the scorer's probability reaches
``threshold``; the threshold is set on held-out writers so recall stays high
(``benchmarks/bot_generalization.py`` prints the recall/false-alarm trade-off).

Trained weights are cached in ``data/model.npz`` with a digest of everything they were
trained on, so a stale cache is retrained (a few seconds) rather than trusted. An install
without the corpus (a wheel) trusts the shipped cache.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..responder import INTENTS
from .classifier import DATA_DIR, UTTERANCES, IntentClassifier, fit, load_utterances
from .escalation import EscalationDecision, decide
from .features import DIM, featurize, load_jieba
from .normalize import normalize
from .training.corpus import CORPUS_DIR, CorpusRoom, load_corpus

MODEL = DATA_DIR / "model.npz"
# p(escalate) at or above this escalates (on top of the rules). Chosen on held-out writers
# (the threshold sweep benchmarks/bot_generalization.py prints): recall first, pooled recall
# >= 0.97 within the 5 % wrong-escalation budget; the figures are in docs/bot.md.
ESCALATION_THRESHOLD = 0.45
ESC_CLASSES = ("no", "yes")
# L2 of the escalation scorer (the intent classifier's default too): on held-out folds,
# 3e-6 scored the same and 1e-4 or more flattened the probabilities (recall fell at every
# false-alarm rate)
ESC_L2 = 1e-5
# an elliptical follow-up ("那它呢") takes its intent from the conversation, not its words:
# such texts train the escalation scorer only
_ELLIPTIC_MAX = 6


@dataclass(frozen=True)
class Row:
    """One training utterance: normalised text, its intent and whether it escalates."""

    text: str
    intent: str | None  # None: not used to train the intent classifier
    escalate: bool


@dataclass
class BotModel:
    intent: IntentClassifier
    escalation: IntentClassifier
    threshold: float = ESCALATION_THRESHOLD

    def __post_init__(self) -> None:
        # featurizing (n-grams, jieba) is most of a model read: both classifiers share it
        self.features = functools.lru_cache(maxsize=1024)(featurize)

    def probs(self, text: str) -> dict[str, float]:
        return self.intent.probs_of(self.features(text))

    def p_escalate(self, text: str) -> float:
        return self.escalation.probs_of(self.features(text))["yes"]

    def escalation_of(self, text: str) -> EscalationDecision:
        """The README rule's phrases, or else the scorer (reason ``"model"``)."""
        rules = decide(text)
        if rules.escalate or self.p_escalate(text) < self.threshold:
            return rules
        return EscalationDecision(True, ["model"])

    @classmethod
    def train(cls, rows: list[Row], threshold: float = ESCALATION_THRESHOLD,
              epochs: int = 80, feats: list | None = None, esc_l2: float = ESC_L2) -> BotModel:
        """``feats``: ``featurize(row.text)`` of each row, when the caller has them (the
        held-out evaluation trains many folds over the same rows)."""
        if feats is None:
            feats = [featurize(r.text) for r in rows]
        lab = {name: i for i, name in enumerate(INTENTS)}
        it = [(f, lab[r.intent]) for f, r in zip(feats, rows, strict=False) if r.intent is not None]
        Wi, bi = fit([f for f, _ in it], [y for _, y in it], len(INTENTS), epochs=epochs)
        We, be = fit(feats, [int(r.escalate) for r in rows], 2, epochs=epochs, l2=esc_l2)
        return cls(IntentClassifier(Wi, bi), IntentClassifier(We, be, ESC_CLASSES), threshold)

    def save(self, path: Path, digest: str) -> None:
        np.savez_compressed(path, W=self.intent.W.astype(np.float16), b=self.intent.b,
                            We=self.escalation.W.astype(np.float16), be=self.escalation.b,
                            digest=np.array(digest))

    @classmethod
    def load(cls, path: Path, digest: str | None) -> BotModel | None:
        """``digest`` None: trust whatever is there (an install without training data)."""
        try:
            z = np.load(path)
            if digest is not None and str(z["digest"]) != digest:
                return None
            return cls(IntentClassifier(z["W"].astype(np.float32), z["b"]),
                       IntentClassifier(z["We"].astype(np.float32), z["be"], ESC_CLASSES))
        except (OSError, KeyError, ValueError):
            return None


def template_rows(path: Path = UTTERANCES) -> list[Row]:
    """The template utterances; their escalation label is the README rule's decision."""
    out = []
    for intent, text in load_utterances(path):
        t = normalize(text)
        out.append(Row(t, intent, intent == "human_request" or decide(t).escalate))
    return out


def corpus_rows(rooms: list[CorpusRoom]) -> list[Row]:
    out = []
    for room in rooms:
        for c in room.cases:
            t = normalize(c.text)
            elliptic = bool(c.history) and len(t) <= _ELLIPTIC_MAX
            out.append(Row(t, None if elliptic else c.intent, c.escalate))
    return out


def training_rows(rooms: list[CorpusRoom] | None = None) -> list[Row]:
    return template_rows() + corpus_rows(load_corpus() if rooms is None else rooms)


def training_digest(root: Path = CORPUS_DIR) -> str | None:
    """A hash of all training inputs; None when the templates are not installed."""
    if not UTTERANCES.exists():
        return None
    h = hashlib.sha256(UTTERANCES.read_bytes() + f"dim={DIM};v=3".encode())
    for room in load_corpus(root):
        for name in ("meta.json", "cases.jsonl"):
            h.update((room.path / name).read_bytes())
    return h.hexdigest()[:16]


_lock = threading.Lock()
_model: BotModel | None = None


def get_model(allow_cache: bool = True) -> BotModel:
    """The process-wide model: loaded from the cache or trained once (seconds)."""
    global _model
    if _model is not None:
        return _model
    with _lock:
        if _model is None:
            load_jieba()
            digest = training_digest()
            m = BotModel.load(MODEL, digest) if allow_cache else None
            if m is None:
                m = BotModel.train(training_rows())
                try:
                    m.save(MODEL, digest or "")
                except OSError:
                    pass  # read-only install: keep the trained model in memory only
            _model = m
    return _model
