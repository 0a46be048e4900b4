"""A small multinomial logistic-regression intent classifier in numpy.

Owns training (full-batch Adam over hashed sparse features, L2-regularised, fixed seed
so it is deterministic) and prediction. The training utterances live in
``data/utterances.tsv`` (written by ``training/generate.py`` from our own templates);
trained weights are cached next to it in ``data/model.npz`` together with a hash of the
utterances, so a stale cache is retrained rather than trusted.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

from ..responder import INTENTS
from .features import DIM, featurize, load_jieba
from .normalize import normalize

DATA_DIR = Path(__file__).resolve().parent / "data"
UTTERANCES = DATA_DIR / "utterances.tsv"
MODEL = DATA_DIR / "model.npz"


def load_utterances(path: Path = UTTERANCES) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        intent, _, text = line.partition("\t")
        if intent in INTENTS and text:
            rows.append((intent, text))
    return rows


class IntentClassifier:
    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.W = W.astype(np.float32)
        self.b = b.astype(np.float32)

    # -- training -------------------------------------------------------------------------
    @classmethod
    def train(cls, rows: list[tuple[str, str]], epochs: int = 80, lr: float = 0.05,
              l2: float = 1e-5, seed: int = 7) -> "IntentClassifier":
        k = len(INTENTS)
        lab = {name: i for i, name in enumerate(INTENTS)}
        indptr = [0]
        indices: list[int] = []
        values: list[float] = []
        y = []
        for intent, text in rows:
            idx, val = featurize(normalize(text))
            indices.extend(idx)
            values.extend(val)
            indptr.append(len(indices))
            y.append(lab[intent])
        ind = np.asarray(indices, dtype=np.int64)
        val = np.asarray(values, dtype=np.float64)
        ptr = np.asarray(indptr, dtype=np.int64)
        n = len(y)
        row_of = np.repeat(np.arange(n), np.diff(ptr))
        Y = np.zeros((n, k))
        Y[np.arange(n), y] = 1.0
        # class weights: balance intents
        counts = Y.sum(0)
        cw = (n / (k * np.maximum(counts, 1)))[y]
        rng = np.random.default_rng(seed)
        W = np.zeros((DIM, k)); rng.random()  # zero start: convex problem, sparse cache
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
        return cls(W, b)

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: Path, digest: str) -> None:
        np.savez_compressed(path, W=self.W.astype(np.float16), b=self.b, digest=np.array(digest))

    @classmethod
    def load(cls, path: Path, digest: str) -> "IntentClassifier | None":
        try:
            z = np.load(path)
            if str(z["digest"]) != digest:
                return None
            return cls(z["W"].astype(np.float32), z["b"])
        except (OSError, KeyError, ValueError):
            return None

    # -- prediction -----------------------------------------------------------------------
    def probs(self, text: str) -> dict[str, float]:
        idx, val = featurize(text)
        if idx:
            logits = (self.W[idx] * np.asarray(val, dtype=np.float32)[:, None]).sum(0) + self.b
        else:
            logits = self.b.copy()
        logits = logits - logits.max()
        e = np.exp(logits)
        e /= e.sum()
        return {name: float(p) for name, p in zip(INTENTS, e)}


_lock = threading.Lock()
_model: IntentClassifier | None = None


def utterances_digest(path: Path = UTTERANCES) -> str:
    return hashlib.sha256(path.read_bytes() + f"dim={DIM}".encode()).hexdigest()[:16]


def get_model(allow_cache: bool = True) -> IntentClassifier:
    """The process-wide classifier: loaded from the cache or trained once (about a second)."""
    global _model
    if _model is not None:
        return _model
    with _lock:
        if _model is None:
            load_jieba()
            digest = utterances_digest()
            m = IntentClassifier.load(MODEL, digest) if allow_cache else None
            if m is None:
                m = IntentClassifier.train(load_utterances())
                try:
                    m.save(MODEL, digest)
                except OSError:
                    pass  # read-only install: keep the trained model in memory only
            _model = m
    return _model

