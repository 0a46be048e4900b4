"""Answers answer what was asked (issue 14, item 5), each test written from the issue's words:

"The coupon question gets the code and its condition; a gift question gets what is left
and, when stock is what caps it, says so; one language per reply (the question's); small
talk and reconnect chatter get small talk; a product question without a product asks which
one in one short line, not a list of every product."
"""

import re

import pytest

CJK = re.compile(r"[\u4e00-\u9fff]")


def _kb_values(kb) -> list[str]:
    """Every literal of the room a reply may quote verbatim (names, gifts, values, texts)."""
    out = []
    for p in kb.products:
        out += [p.name, *p.sizes, *p.attributes.values()]
    for pr in kb.promotions:
        out += [x for x in (pr.gift, pr.text) if x]
    out += list(kb.policies.values())
    return sorted(out, key=len, reverse=True)


def _without_kb(text: str, kb) -> str:
    for v in _kb_values(kb):
        text = text.replace(v, "")
    return text


@pytest.mark.parametrize("q", ["what is the coupon code", "券码多少"])
def test_coupon_question_gets_code_and_condition_only(ask, kb_b, q):
    r = ask(kb_b, q)
    assert r.intent == "price_promo"
    assert "MEIMEI30" in r.text
    assert "199" in r.text and "30" in r.text  # the condition: from 199, 30 off
    # nothing else: no product price, no bundle, no other promotion
    assert "159" not in r.text and "178" not in r.text and "300" not in r.text, r.text
    assert len(r.text) < 100, r.text  # one short line


def test_gift_question_says_stock_caps_it_in_english(ask, kb_b):
    kb_b.product("B001").stock = 3
    r = ask(kb_b, "any free gifts left with the curling wand?")
    assert r.intent == "price_promo"
    assert "stock is down to 3" in r.text and "at most 3" in r.text, r.text


def test_gift_question_without_cap_says_what_is_left(ask, kb_b):
    r = ask(kb_b, "卷发棒送的梳子还有名额吗")
    assert "36" in r.text  # 200 - 164
    assert "库存只剩" not in r.text
    assert "159" not in r.text  # a gift question, not the price list


@pytest.mark.parametrize("q", ["what is the coupon code", "any free gifts left with the curling wand?",
                               "is there a discount if I buy the lipstick and foundation together?",
                               "when does the toothbrush ship?"])
def test_english_question_english_reply(ask, kb_b, q):
    """One language per reply: apart from the room's own literals (product names, the
    host's words, attribute values), an English question gets no Chinese."""
    r = ask(kb_b, q)
    assert r.lang == "en"
    assert not CJK.search(_without_kb(r.text, kb_b)), r.text


@pytest.mark.parametrize("q", ["刚才网断了 现在还在吗", "sorry my wifi dropped, you still there?"])
def test_reconnect_chatter_gets_small_talk(ask, kb_b, q):
    r = ask(kb_b, q)
    assert not r.escalate
    assert not any(p.name in r.text for p in kb_b.products), r.text
    assert not re.search(r"\d", r.text), r.text  # no stock, no prices
    assert len(r.text) < 80, r.text


@pytest.mark.parametrize("q,lang", [("还有货吗", "zh"), ("多少钱", "zh"), ("is it still in stock?", "en")])
def test_product_question_without_product_asks_which_one(ask, kb_b, q, lang):
    r = ask(kb_b, q, lang=lang)
    assert r.intent in ("stock", "price_promo")
    assert not any(p.name in r.text for p in kb_b.products), r.text  # not a list
    assert "\n" not in r.text and len(r.text) < 80, r.text  # one short line
    assert re.search(r"哪一款|which item", r.text, re.I), r.text
