"""The composers' per-text caches (``answers._asked``, ``_policy_change_clauses``,
``_names_quota``, ``_names_gift``, ``variants._named``, ``slots._find_size``) are keyed by
the text *and* the knowledge they read, never by a live number: an edit the room makes in
place - a policy reworded, an attribute or a size list changed, a gift quota raised, stock
sold - is in the very next answer. Each test first puts the old answer in the caches, then
changes the room, then asks again.
"""

from gateway.support.bot.answers import Ctx, asked_attributes
from gateway.support.bot.slots import Slots, find_size
from gateway.support.bot.variants import named


def _ctx(kb, text: str, products=()) -> Ctx:
    return Ctx(kb=kb, text=text, lang="zh", slots=Slots(products=list(products), product_from="text"),
               escalate=False, reasons=[])


def test_an_attribute_changed_in_place_is_read_at_once(kb_demo):
    lamp = kb_demo.product("D005")
    ctx = _ctx(kb_demo, "营地灯续航多久", [lamp])
    assert ("续航", "低档约30小时") in asked_attributes(ctx, lamp)
    lamp.attributes["续航"] = "低档约45小时"
    assert ("续航", "低档约45小时") in asked_attributes(ctx, lamp)
    assert ("续航", "低档约30小时") not in asked_attributes(ctx, lamp)


def test_a_reworded_policy_is_quoted_in_the_next_order_change_reply(ask, kb_demo):
    text = "能不能改地址 想改顺丰"
    first = ask(kb_demo, text)
    assert first.intent == "order_change"
    assert "可补差价升级顺丰" in first.text
    kb_demo.policies["shipping"] = "默认发中通，可补8元改发顺丰；全国包邮。"
    again = ask(kb_demo, text)
    assert "可补8元改发顺丰" in again.text
    assert "可补差价升级顺丰" not in again.text


def test_a_size_list_changed_in_place_is_read_at_once(kb_demo):
    bottle = kb_demo.product("D004")
    assert named("保温壶换成1.5l的", bottle) == []
    assert find_size("保温壶要1.5l的", kb_demo, bottle) is None
    bottle.sizes = [*bottle.sizes, "1.5L"]
    assert named("保温壶换成1.5l的", bottle) == ["1.5L"]
    assert find_size("保温壶要1.5l的", kb_demo, bottle) == "1.5L"


def test_a_raised_gift_quota_is_named_by_its_new_number(ask, kb_demo):
    text = "前150名送的毛巾还有吗"
    before = ask(kb_demo, text)
    promo = kb_demo.promotion("PD1")
    promo.limit = 150
    after = ask(kb_demo, text)
    assert after.intent == "price_promo"
    assert "82" in after.text  # 150 - 68 claimed
    assert "82" not in before.text


def test_stock_is_read_live_when_the_same_question_repeats(ask, kb_demo):
    text = "营地灯还有货吗"
    kb_demo.product("D005").stock = 7
    assert "7" in ask(kb_demo, text).text
    kb_demo.product("D005").stock = 0
    reply = ask(kb_demo, text)
    assert "售罄" in reply.text and "库存还剩7" not in reply.text


def test_a_changed_coupon_threshold_is_recognised_by_its_new_number(kb_demo):
    from gateway.support.bot.answers import _mentioned_promos

    ctx = _ctx(kb_demo, "满200减30的券还能用吗")
    assert [pr.id for pr in _mentioned_promos(ctx)] == []
    kb_demo.promotion("PD3").threshold = 200
    assert [pr.id for pr in _mentioned_promos(ctx)] == ["PD3"]
