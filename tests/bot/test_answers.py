"""Size rule, live-state grounding, language and multi-turn behaviour of the replies."""

from gateway.support.bot.answers import recommend_size
from gateway.support.bot.slots import Body


def test_size_rule_takes_larger_of_height_and_weight(kb_b):
    yoga = kb_b.product("B004")
    # height 160 -> M, weight 58 -> L  => L
    assert recommend_size(yoga, Body(160, 58))[0] == "L"
    # height 175 -> XL, weight 50 -> M => XL
    assert recommend_size(yoga, Body(175, 50))[0] == "XL"
    assert recommend_size(yoga, Body(155, 44))[0] == "S"
    # off the chart: clamp to the ends
    assert recommend_size(yoga, Body(190, 90))[0] == "XL"
    assert recommend_size(yoga, Body(None, None)) is None


def test_size_advice_reply_with_jin(ask, kb_b):
    r = ask(kb_b, "160 116斤穿瑜伽裤哪个码")  # 58 kg -> L by weight, M by height
    assert r.intent == "size_advice" and " L " in r.text


def test_non_chart_size_from_attributes(ask, kb_b):
    r = ask(kb_b, "我是过肩长发，卷发棒选哪个尺寸")
    assert r.intent == "size_advice" and "32mm" in r.text


def test_live_gift_quota_follows_claimed(ask, kb_b):
    promo = kb_b.promotion("PB1")
    r = ask(kb_b, "卷发棒送梳子还有名额吗")
    assert r.intent == "price_promo" and "36" in r.text
    promo.claimed = 180
    r = ask(kb_b, "卷发棒送梳子还有名额吗")
    assert "20个名额" in r.text and "36" not in r.text
    promo.claimed = 200
    r = ask(kb_b, "卷发棒送梳子还有名额吗")
    assert "送完" in r.text


def test_gift_quota_capped_by_stock(ask, kb_b):
    kb_b.product("B001").stock = 5
    r = ask(kb_b, "卷发棒前200名的赠品还有吗")
    # what is left (5), and that stock is what caps it; never "36 left" on its own
    assert "库存只剩5件" in r.text and "最多还能送5份" in r.text


def test_live_stock_follows_knowledge(ask, kb_b):
    r = ask(kb_b, "粉底液还有货吗")
    assert r.intent == "stock" and "9件" in r.text
    kb_b.product("B003").stock = 3
    assert "3件" in ask(kb_b, "粉底液还有货吗").text
    kb_b.product("B003").stock = 0
    assert "售罄" in ask(kb_b, "粉底液还有货吗").text


def test_english_reply_states_numbers_cleanly(ask, kb_b):
    r = ask(kb_b, "how many toothbrushes are left?")
    assert r.lang == "en" and r.intent == "stock"
    assert "in stock: 26" in r.text


def test_reply_language_follows_viewer(ask, kb_b):
    assert ask(kb_b, "what's the coupon?").lang == "en"
    r = ask(kb_b, "券码多少")
    assert r.lang == "zh" and "MEIMEI30" in r.text
    assert ask(kb_b, "券码多少", lang="en").lang == "en"


def test_multiturn_carries_product(ask, kb_b):
    r = ask(kb_b, "那它还剩多少", history=["口红是什么质地的"])
    assert r.intent == "stock" and "156" in r.text
    r = ask(kb_b, "what about stock?", history=["is the foundation good for oily skin"])
    assert "9" in r.text


def test_multiturn_carries_body_measurements(ask, kb_b):
    r = ask(kb_b, "那瑜伽裤呢", history=["我168 57公斤"])
    assert r.intent == "size_advice" and " L " in r.text


def test_coupon_and_bundle(ask, kb_b):
    r = ask(kb_b, "口红和粉底液一起买便宜吗")
    assert r.intent == "price_promo" and "立减40" in r.text


def test_human_request_says_connecting(ask, kb_b):
    r = ask(kb_b, "帮我叫个真人客服")
    assert r.intent == "human_request" and r.escalate and "转接人工" in r.text
    r = ask(kb_b, "can I talk to a real person please")
    assert r.intent == "human_request" and r.escalate and "connecting you" in r.text.lower()


def test_demo_room_loads_and_answers(ask, kb_demo):
    assert kb_demo.room.id == "demo"
    kinds = {p.kind for p in kb_demo.promotions}
    assert kinds == {"first_n_gift", "discount", "coupon", "bundle"}
    gift = next(p for p in kb_demo.promotions if p.kind == "first_n_gift" and p.limit == 100)
    r = ask(kb_demo, "冲锋衣送的毛巾还有名额吗")
    assert str(gift.limit - gift.claimed) in r.text


def test_mood(ask, kb_b):
    assert ask(kb_b, "什么垃圾 骗子").mood == "angry"
    assert ask(kb_b, "主播晚上好").mood == "positive"
