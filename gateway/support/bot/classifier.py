"""A small multinomial logistic-regression classifier in numpy.

Owns fitting (full-batch Adam over hashed sparse features, L2-regularised, zero start, so
it is deterministic) and prediction over any set of classes: the 12 intents, and the two
classes of the escalation scorer. What it is trained on and where the weights are cached
is :mod:`.model`'s business. The template utterances (``data/utterances.tsv``, written by
``training/generate.py``) are read here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..responder import INTENTS
from .features import DIM, featurize
from .normalize import normalize

DATA_DIR = Path(__file__).resolve().parent / "data"
UTTERANCES = DATA_DIR / "utterances.tsv"


def load_utterances(path: Path = UTTERANCES) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        intent, _, text = line.partition("\t")
        if intent in INTENTS and text:
            rows.append((intent, text))
    return rows


Features = tuple[list[int], list[float]]


def fit(feats: list[Features], y: list[int], k: int, epochs: int = 80, lr: float = 0.05,
        l2: float = 1e-5, class_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch Adam over hashed sparse features.

    Zero start on a convex problem: deterministic, no seed needed. ``class_weight`` (one per
    class) defaults to balancing the classes, so a rare intent is not drowned."""
    indptr = [0]
    indices: list[int] = []
    values: list[float] = []
    for idx, vals in feats:
        indices.extend(idx)
        values.extend(vals)
        indptr.append(len(indices))
    ind = np.asarray(indices, dtype=np.int64)
    val = np.asarray(values, dtype=np.float64)
    ptr = np.asarray(indptr, dtype=np.int64)
    n = len(y)
    row_of = np.repeat(np.arange(n), np.diff(ptr))
    Y = np.zeros((n, k))
    Y[np.arange(n), y] = 1.0
    if class_weight is None:
        class_weight = n / (k * np.maximum(Y.sum(0), 1))
    cw = np.asarray(class_weight)[y]
    W = np.zeros((DIM, k))
    b = np.zeros(k)
    mW = np.zeros_like(W); vW = np.zeros_like(W)
    mb = np.zeros_like(b); vb = np.zeros_like(b)
    b1, b2, eps = 0.9, 0.999, 1e-8
    used = np.unique(ind)
    for t in range(1, epochs + 1):
        contrib = W[ind] * val[:, None]
        logits = np.add.reduceat(contrib, ptr[:-1], axis=0) + b
        logits -= logits.max(1, keepdims=True)
        P = np.exp(logits)
        P /= P.sum(1, keepdims=True)
        D = (P - Y) * cw[:, None] / n
        gW = np.zeros_like(W)
        dv = D[row_of] * val[:, None]
        for c in range(k):
            gW[:, c] = np.bincount(ind, weights=dv[:, c], minlength=DIM)
        gW[used] += l2 * W[used]
        gb = D.sum(0)
        mW[used] = b1 * mW[used] + (1 - b1) * gW[used]
        vW[used] = b2 * vW[used] + (1 - b2) * gW[used] ** 2
        mb = b1 * mb + (1 - b1) * gb
        vb = b2 * vb + (1 - b2) * gb ** 2
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        W[used] -= lr * (mW[used] / c1) / (np.sqrt(vW[used] / c2) + eps)
        b -= lr * (mb / c1) / (np.sqrt(vb / c2) + eps)
    return W, b


class IntentClassifier:
    """Probabilities over ``classes`` (the 12 intents by default) for a normalised text."""

    def __init__(self, W: np.ndarray, b: np.ndarray, classes: tuple[str, ...] = INTENTS) -> None:
        self.W = W.astype(np.float32)
        self.b = b.astype(np.float32)
        self.classes = tuple(classes)

    # -- training -------------------------------------------------------------------------
    @classmethod
    def train(cls, rows: list[tuple[str, str]], epochs: int = 80, lr: float = 0.05,
              l2: float = 1e-5, classes: tuple[str, ...] = INTENTS) -> IntentClassifier:
        lab = {name: i for i, name in enumerate(classes)}
        feats = [featurize(normalize(text)) for _, text in rows]
        W, b = fit(feats, [lab[c] for c, _ in rows], len(classes), epochs, lr, l2)
        return cls(W, b, classes)

    # -- prediction -----------------------------------------------------------------------
    def probs(self, text: str) -> dict[str, float]:
        return self.probs_of(featurize(text))

    def probs_of(self, feats: Features) -> dict[str, float]:
        """Probabilities for already featurized text (one featurize serves both models)."""
        idx, val = feats
        if idx:
            logits = (self.W[idx] * np.asarray(val, dtype=np.float32)[:, None]).sum(0) + self.b
        else:
            logits = self.b.copy()
        logits = logits - logits.max()
        e = np.exp(logits)
        e /= e.sum()
        return {name: float(p) for name, p in zip(self.classes, e, strict=False)}
