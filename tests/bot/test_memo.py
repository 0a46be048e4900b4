"""The bot's memo (``gateway.support.bot.memo``) changes its cost, never its answers.

Every answer of the memoising bot is compared with a bot that reads every message afresh
(``OfflineBot(memo=False)``), over the repo's labelled cases in several orders (so the memo
is warm with other conversations' texts), after live changes (stock, gift quota), after
the room's product objects are replaced by equal fresh ones (what a Redis refresh does),
and after the catalog itself changes.
"""

import copy
import dataclasses
import json
import random
from pathlib import Path

import pytest

from gateway.support.bot import OfflineBot
from gateway.support.bot.slots import find_size
from gateway.support.knowledge import Knowledge, Product
from gateway.support.responder import BotQuery

HERE = Path(__file__).resolve().parent


def _cases(name: str) -> list[dict]:
    return [json.loads(line) for line in (HERE / name).read_text(encoding="utf-8").splitlines()
            if line.strip()]


@pytest.fixture(scope="module")
def plain() -> OfflineBot:
    b = OfflineBot(memo=False)
    b.warm_up()
    return b


def _reply(bot: OfflineBot, kb: Knowledge, text: str, history=(), lang=None) -> dict:
    return dataclasses.asdict(bot.answer(BotQuery(text=text, history=list(history), knowledge=kb,
                                                  lang=lang)))


def _conversations(cases: list[dict]) -> list[tuple[list[str], str, str | None]]:
    """Each case, plus each case asked again as the next turn of its own history."""
    out = []
    for c in cases:
        out.append((c["history"], c["text"], c.get("lang")))
        out.append((c["history"] + [c["text"]], c["text"], c.get("lang")))
    return out


@pytest.mark.parametrize("room,cases", [("room_b.json", "cases_b.jsonl"),
                                        ("room_c.json", "cases_c.jsonl")])
def test_memo_answers_equal_fresh_reading_in_any_order(plain, room, cases):
    kb = Knowledge.load(HERE / room)
    convs = _conversations(_cases(cases))
    expected = [_reply(plain, kb, t, h, lang) for h, t, lang in convs]
    bot = OfflineBot()
    for seed in (1, 2, 3):  # the same memo across three orders: warm with everything
        order = list(range(len(convs)))
        random.Random(seed).shuffle(order)
        for i in order:
            h, t, lang = convs[i]
            assert _reply(bot, kb, t, h, lang) == expected[i], (seed, t, h)
    assert bot.memo.hits > bot.memo.misses  # it was used, not bypassed


def test_live_stock_and_quota_are_read_at_answer_time(plain, kb_demo):
    bot = OfflineBot()
    q = "徒步裤M码现在还有吗"
    history = ["徒步裤是什么面料"]
    first = _reply(bot, kb_demo, q, history)
    for p in kb_demo.products:
        p.stock = 0
    for promo in kb_demo.promotions:
        if promo.limit:
            promo.claimed = promo.limit
    after = _reply(bot, kb_demo, q, history)
    assert after == _reply(plain, kb_demo, q, history)
    assert after["text"] != first["text"]  # the change is visible through the memo
    gift = "送毛巾的名额还剩几个"
    assert _reply(bot, kb_demo, gift) == _reply(plain, kb_demo, gift)


def test_fresh_product_objects_with_the_same_names_are_used(plain, kb_demo):
    """A Redis refresh swaps the room's products for equal fresh objects: the memo keeps its
    entries (same catalog) but must answer with the new objects' live stock."""
    bot = OfflineBot()
    q, history = "那它还有库存吗", ["徒步裤是什么面料"]
    _reply(bot, kb_demo, q, history)
    fresh = [Product.from_dict(p.to_dict()) for p in kb_demo.products]
    for p in fresh:
        p.stock = 0
    kb_demo.products = fresh
    misses = bot.memo.misses
    assert _reply(bot, kb_demo, q, history) == _reply(plain, kb_demo, q, history)
    assert bot.memo.misses == misses  # same naming: remembered, yet answered from live objects


def test_a_changed_catalog_is_read_afresh(plain, kb_demo):
    bot = OfflineBot()
    q = "徒步裤有XXL吗"
    _reply(bot, kb_demo, q)
    changed = copy.deepcopy(kb_demo)
    pants = next(p for p in changed.products if "徒步裤" in p.name)
    pants.sizes = list(pants.sizes) + ["XXL"]
    misses = bot.memo.misses
    got = _reply(bot, changed, q)
    assert bot.memo.misses > misses
    assert got == _reply(plain, changed, q)
    assert got["slots"].get("size") == "XXL"


def test_size_ties_follow_the_product_list_not_the_hash_seed(kb_demo):
    """"S还是M" names two sizes of equal length: the first in the product's own list wins
    (it used to depend on a set's order, i.e. on the process's hash seed)."""
    p = Product(sku="T1", name="测试卫衣", price=1, sizes=["S", "M"])
    q = Product(sku="T2", name="测试卫衣", price=1, sizes=["M", "S"])
    kb = copy.deepcopy(kb_demo)
    kb.products = [p]
    assert find_size("卫衣s还是m", kb, p) == "S"
    kb.products = [q]
    assert find_size("卫衣s还是m", kb, q) == "M"


def test_many_rooms_share_the_memo_without_thrashing(plain, kb_demo):
    """A node serves many rooms: ten catalogs, asked in turn, stay remembered (a per-room
    slot of four catalogs used to drop them all before the next round)."""
    bot = OfflineBot()
    rooms = []
    for i in range(10):
        kb = copy.deepcopy(kb_demo)
        kb.products[0].name = f"{kb.products[0].name}{i}号"
        rooms.append(kb)
    q, history = "这个还有货吗", ["冲锋衣是什么面料"]
    first = [_reply(bot, kb, q, history) for kb in rooms]
    misses = bot.memo.misses
    again = [_reply(bot, kb, q, history) for kb in rooms]
    assert bot.memo.misses == misses
    assert again == first == [_reply(plain, kb, q, history) for kb in rooms]
