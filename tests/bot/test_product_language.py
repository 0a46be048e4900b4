"""Products in any language (issue 14, item 4): an English, pinyin or nickname question finds
a product whose name is only in Chinese, and an English reply names it in English where the
room gives an English name."""

import pytest

from gateway.support.bot.slots import extract
from gateway.support.knowledge import Knowledge

ROOM = {
    "room": {"id": "t", "title": "厨房生鲜专场", "host": "阿满", "currency": "CNY"},
    "products": [
        {"sku": "K1", "name": "东北五常大米5kg", "price": 69, "stock": 40, "sizes": [],
         "attributes": {"产地": "黑龙江五常"}, "ships_within_hours": 48},
        {"sku": "K2", "name": "多功能破壁机", "price": 399, "stock": 12, "sizes": [],
         "attributes": {"功率": "1200W"}, "ships_within_hours": 24},
        {"sku": "K3", "name": "原切西冷牛排10片装", "price": 159, "stock": 7, "sizes": [],
         "attributes": {"产地": "澳洲"}, "ships_within_hours": 24},
        {"sku": "K4", "name": "老式铸铁炒锅32cm", "price": 129, "stock": 0, "sizes": [],
         "attributes": {"材质": "铸铁"}, "ships_within_hours": 72},
        {"sku": "K5", "name": "智利车厘子JJ级2斤", "price": 99, "stock": 30, "sizes": [],
         "attributes": {}, "ships_within_hours": 24, "aliases": ["chilean cherries", "chelizi", "车子"]},
    ],
    "promotions": [],
    "policies": {"shipping": "包邮", "returns": "七天无理由", "payment": "支持花呗", "invoice": "可开电子发票"},
    "faq": [],
}


@pytest.fixture
def kb() -> Knowledge:
    return Knowledge.from_dict(ROOM)


@pytest.mark.parametrize("text,sku", [
    ("how much is the rice", "K1"), ("is the blender in stock", "K2"),
    ("do you still have steaks", "K3"), ("is the wok non-stick", "K4"),
    ("are the cherries sweet", "K5"),
])
def test_english_word_finds_chinese_name(kb, text, sku):
    assert [p.sku for p in extract(text, kb).products] == [sku]


@pytest.mark.parametrize("text", ["chelizi还有吗", "车子多少钱"])
def test_pinyin_and_nickname_aliases(kb, text):
    assert [p.sku for p in extract(text, kb).products] == ["K5"]


def test_unknown_word_finds_nothing(kb):
    assert extract("what about the weather", kb).products == []


def test_english_reply_uses_english_alias(ask, kb):
    r = ask(kb, "are the cherries still in stock?")
    assert r.intent == "stock" and "in stock: 30" in r.text
    assert "chilean cherries" in r.text.lower()


def test_aliases_round_trip_and_stay_optional(kb):
    d = kb.to_dict()
    assert d["products"][4]["aliases"] == ["chilean cherries", "chelizi", "车子"]
    assert "aliases" not in d["products"][0]  # older files keep their shape
