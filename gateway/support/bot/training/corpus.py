"""The labelled corpus: rooms and viewer messages written by independent writers.

Layout: ``gateway/support/bot/corpus/<room>/`` holds ``room.json`` (the knowledge format
of the bot README), ``cases.jsonl`` (the README's case format) and ``meta.json`` (writer,
room, category). Each writer saw only the README and a room of their own (datasheet in
``docs/bot.md``). A folder without ``meta.json`` is a writer still at work and is left out.

Why folders of cases rather than a flat utterance list: the same files train the models,
drive the held-out evaluation (a writer's or a category's cases scored against its own
room with ``score.py``) and keep provenance, so a fold can leave a writer out honestly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parents[1] / "corpus"


@dataclass(frozen=True)
class Case:
    id: str
    lang: str
    history: tuple[str, ...]
    text: str
    intent: str
    escalate: bool
    facts: tuple[str, ...]

    def to_json(self) -> dict:
        return {"id": self.id, "lang": self.lang, "history": list(self.history), "text": self.text,
                "intent": self.intent, "escalate": self.escalate, "facts": list(self.facts)}


@dataclass(frozen=True)
class CorpusRoom:
    room: str
    writer: str
    category: str
    path: Path  # the folder; room.json is the knowledge
    cases: tuple[Case, ...]
    tags: tuple[str, ...] = ()  # product categories (beauty, food, …): what a category fold holds out

    @property
    def knowledge_path(self) -> Path:
        return self.path / "room.json"

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories a leave-one-category-out fold holds out: ``tags`` in meta.json,
        else the first word of ``category``. A mixed room (beauty + digital) is held out
        with either of its categories, so no fold trains on a room of its own category."""
        return self.tags or (self.category.split()[0],)


def load_room(folder: Path) -> CorpusRoom:
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    cases = []
    for line in (folder / "cases.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            c = json.loads(line)
            cases.append(Case(str(c["id"]), c["lang"], tuple(c.get("history") or ()), c["text"],
                              c["intent"], bool(c["escalate"]), tuple(c.get("facts") or ())))
    return CorpusRoom(room=meta.get("room", folder.name), writer=meta["writer"],
                      category=meta.get("category", ""), path=folder, cases=tuple(cases),
                      tags=tuple(meta.get("tags") or ()))


def load_corpus(root: Path = CORPUS_DIR) -> list[CorpusRoom]:
    """Every finished room folder under ``root``, sorted by folder name (deterministic)."""
    if not root.is_dir():
        return []
    return [load_room(d) for d in sorted(root.iterdir()) if (d / "meta.json").is_file()]
