"""The fact-recall mechanisms of session 6, each on a room invented here (a cycling and
stationery shop: no corpus or dev text), each written from the README's wording:

* "Every fact is a literal substring of the KB ... or a size from the chart rule": a reply
  must *contain* the size it recommends when the room's advice says how to choose
  (``variants``), and the product a question is about by what it asks (``topic``);
* "text is the message to classify and answer": a message that is a complaint *and* a
  stock or attribute question still gets the number (``answers.also_answer``);
* history "gives context": a product named outright earlier beats a weak word now;
* return/repair, order-change and restock answers quote the room's own terms.
"""

import pytest

from gateway.support.bot import OfflineBot, variants
from gateway.support.bot.lexicon import zh_for
from gateway.support.bot.normalize import normalize
from gateway.support.bot.slots import extract
from gateway.support.bot.topic import product_by_topic
from gateway.support.knowledge import Knowledge
from gateway.support.responder import BotQuery


def _p(sku, name, stock=20, sizes=(), attributes=None, price=99, **kw):
    d = {"sku": sku, "name": name, "price": price, "list_price": price * 2, "stock": stock,
         "sizes": list(sizes), "attributes": attributes or {}, "ships_within_hours": 48}
    d.update(kw)
    return d


@pytest.fixture
def kb():
    return Knowledge.from_dict({
        "room": {"id": "cyc", "title": "骑行装备间", "host": "阿骑", "currency": "CNY"},
        "products": [
            _p("C1", "便携高压打气筒", 0, ["黑色"], {"最大气压": "160psi", "气嘴": "美嘴法嘴通用",
                                           "保修": "整机保修2年，只换不修"}),
            _p("C2", "轻量化骑行头盔", 33, ["S", "M", "L"],
               {"尺码建议": "头围52-55cm选S，55-58cm选M，58cm以上选L", "重量": "约260g",
                "充电接口": "尾灯Type-C充电"}),
            _p("C3", "USB充电自行车尾灯", 41, ["单灯", "双灯套装"], {"续航": "常亮6小时，闪烁15小时"}),
            _p("C4", "码表延长支架", 17, ["Edge 530", "Edge 830", "Edge 1040"],
               {"材质": "铝合金CNC", "适配说明": "按码表型号选对应款"}),
            _p("C5", "骑行手套 半指", 25, ["通勤款", "越野款"],
               {"选购建议": "城市通勤选通勤款，山地越野选越野款", "掌垫": "硅胶减震"}),
            _p("C6", "防水登山鞋", 12, ["40", "41", "42"], {"鞋底": "V底大底"}),
            _p("C7", "赣南脐橙 10斤装", 60, [], {"产地": "江西赣州"}),
        ],
        "promotions": [{"id": "g1", "kind": "first_n_gift", "text": "头盔前50单送一副骑行袖套！",
                        "limit": 50, "claimed": 41, "gift": "骑行袖套", "sku": "C2", "threshold": None,
                        "amount": None, "code": None, "ends_at": None}],
        "policies": {"shipping": "现货48小时内发货；默认中通，补8元可改顺丰",
                     "returns": "7天无理由退换；质量问题来回运费我们承担",
                     "payment": "支持微信、支付宝；付款后30分钟内可在订单页自己改地址",
                     "invoice": "可开电子普通发票，专票请提供税号"},
        "faq": [{"q": "打气筒什么时候补货", "a": "打气筒预计5天后补货，补货后直播间通知", "intent": "stock"}],
    })


@pytest.fixture(scope="module")
def bot():
    b = OfflineBot()
    b.warm_up()
    return b


def ask(bot, kb, text, history=(), lang=None):
    return bot.answer(BotQuery(text=text, history=list(history), knowledge=kb, lang=lang))


# -- the product a question is about by what it asks (topic) ---------------------------------

def test_question_naming_no_product_finds_the_one_whose_attributes_hold_it(kb):
    assert product_by_topic(normalize("最大气压能到多少"), kb).sku == "C1"
    assert product_by_topic(normalize("掌垫是什么材料"), kb).sku == "C5"


def test_question_about_nothing_particular_names_no_product(kb):
    assert product_by_topic(normalize("这个怎么样"), kb) is None
    assert product_by_topic(normalize("多少钱"), kb) is None


def test_attribute_question_without_product_is_answered_with_the_value(bot, kb):
    # whichever composer the intent picks, the value asked about is in the reply
    for q in ("最大气压能到多少", "气嘴是什么规格的"):
        r = ask(bot, kb, q)
        assert r.slots.get("sku") is None  # no product named: the knowledge decided
        assert ("160psi" if "气压" in q else "美嘴法嘴通用") in r.text, r.text


# -- the variant a message points to (variants) -----------------------------------------------

def test_variant_named_in_the_viewers_spelling(kb):
    p = kb.product("C4")
    assert variants.named(normalize("我是830的"), p) == ["Edge 830"]
    assert variants.named(normalize("edge1040能用吗"), p) == ["Edge 1040"]
    assert variants.named(normalize("随便问问"), p) == []


def test_advice_applied_to_the_viewers_number(kb):
    p = kb.product("C2")
    items = [("尺码建议", p.attributes["尺码建议"])]
    assert variants.by_number(normalize("头围56"), p, items) == ["M"]
    assert variants.by_number(normalize("头围53.5cm"), p, items) == ["S"]
    assert variants.by_number(normalize("头围60"), p, items) == ["L"]


def test_advice_applied_to_the_viewers_words(kb):
    p = kb.product("C5")
    items = [("选购建议", p.attributes["选购建议"])]
    assert variants.by_words(normalize("我平时山地越野多"), p, items) == ["越野款"]


def test_size_reply_contains_the_recommended_variant(bot, kb):
    r = ask(bot, kb, "头盔选哪个码 我头围57")
    assert r.intent == "size_advice", r
    assert "建议选 M" in r.text, r.text
    r = ask(bot, kb, "which helmet size for a 53cm head", lang="en")
    assert "pick: S" in r.text, r.text


# -- what else the message plainly asks (also_answer, asked_attributes) -----------------------

def test_angry_stock_question_still_gets_the_stock(bot, kb):
    r = ask(bot, kb, "问了三遍了 头盔到底还有没有货 什么态度 垃圾")
    assert r.escalate
    assert "33" in r.text, r.text


def test_attribute_asked_in_a_complaint_is_answered(bot, kb):
    r = ask(bot, kb, "尾灯续航到底多久 问了半天没人理 服了")
    assert "常亮6小时" in r.text, r.text


def test_size_asked_in_a_complaint_gets_the_size(bot, kb):
    r = ask(bot, kb, "问了好几遍了 头围57 头盔到底选哪个码 没人理 服了")
    assert "M" in r.text.replace("CM", "").replace("cm", ""), r.text
    assert "建议选 M" in r.text, r.text


def test_gift_asked_again_angrily_gets_what_is_left(bot, kb):
    r = ask(bot, kb, "头盔送的袖套到底还送不送 问第三遍了 无语")
    assert "9" in r.text, r.text


# -- a product named outright earlier beats a weak word now ------------------------------------

def test_history_product_beats_a_weak_word_of_another_name(bot, kb):
    s = extract(normalize("充电是什么接口"), kb)
    assert [p.sku for p in s.products] == ["C3"]  # "充电" is a piece of the tail light's name
    r = ask(bot, kb, "充电是什么接口", history=["轻量化骑行头盔看着不错"])
    assert r.slots.get("sku") == "C2", r.slots
    assert "Type-C" in r.text, r.text


# -- the room's own terms --------------------------------------------------------------------

def test_repair_question_quotes_the_products_own_warranty(bot, kb):
    r = ask(bot, kb, "打气筒用了半年坏了 能修吗")
    assert r.intent == "return_refund", r
    assert "只换不修" in r.text and "2年" in r.text, r.text


def test_order_change_names_the_target_variant_and_the_rule(bot, kb):
    r = ask(bot, kb, "手套拍成通勤款了 能换成越野款吗")
    assert r.intent == "order_change", r
    assert "改成越野款" in r.text, r.text
    r = ask(bot, kb, "刚付款 地址写错了 多久之内能自己改")
    assert "30分钟" in r.text, r.text


def test_sold_out_stock_answer_quotes_the_restock_word(bot, kb):
    r = ask(bot, kb, "打气筒还有吗")
    assert r.intent == "stock", r
    assert "5天后补货" in r.text, r.text


def test_special_invoice_question_gets_the_invoice_policy(bot, kb):
    r = ask(bot, kb, "能开专票吗")
    assert r.intent == "payment", r
    assert "税号" in r.text, r.text


# -- English words the dictionary misses or mis-senses -------------------------------------------

def test_shop_nouns_the_dictionary_gets_wrong():
    assert "橙" in zh_for("oranges")  # the dictionary's "oranges" is 猩猩
    assert "鞋" in zh_for("boots")
    assert "枣" in zh_for("dates")


def test_english_nouns_find_chinese_only_products(kb):
    assert [p.sku for p in extract(normalize("are the boots waterproof"), kb).products] == ["C6"]
    assert [p.sku for p in extract(normalize("oranges in stock?"), kb).products] == ["C7"]


# -- also_answer on its own: whatever intent was chosen ----------------------------------------

def _compose(kb, intent, text, lang="zh"):
    from gateway.support.bot.answers import Ctx, compose
    from gateway.support.bot.cues import cue_scores

    t = normalize(text)
    return compose(intent, Ctx(kb=kb, text=t, lang=lang, slots=extract(t, kb), escalate=True,
                               reasons=["anger"], cues=cue_scores(t)))


@pytest.mark.parametrize("text,fact", [
    ("头盔到底还有没有货 问了三遍", "33"),          # stock
    ("头盔到底多少钱 问了三遍", "99"),              # price
    ("头盔选哪个码 头围57 问了三遍", "建议选 M"),     # size by the room's advice
    ("头盔送的袖套还送不送 问了三遍", "9"),          # gift left
    ("尾灯续航多久 问了三遍", "常亮6小时"),          # the attribute asked about
    ("头盔多重啊 问了三遍", "约260g"),              # asked by a question word: 多重 → 重量
    ("改顺丰要加多少 问了三遍", "补8元可改顺丰"),      # courier fee: the shipping policy
])
def test_a_complaint_reply_still_answers_what_was_asked(kb, text, fact):
    out = _compose(kb, "complaint", text)
    assert fact in out, out


def test_nothing_is_added_when_nothing_else_was_asked(kb):
    out = _compose(kb, "complaint", "头盔质量太差了 垃圾")
    assert "33" not in out and "99元" not in out, out


# -- the product finder: words that name nothing ---------------------------------------------

def test_how_viewers_address_each_other_names_no_product():
    kb = Knowledge.from_dict({"room": {"id": "x", "title": "t", "host": "h", "currency": "CNY"},
                              "products": [_p("Q1", "磁吸移动充电宝"), _p("Q2", "智能运动手环")],
                              "promotions": [], "policies": {}, "faq": []})
    assert extract(normalize("宝子们 这个选哪个啊"), kb).products == []  # 宝 ends 充电宝
    assert [p.sku for p in extract(normalize("宝子们 充电宝多重"), kb).products] == ["Q1"]


def test_a_latin_word_two_names_share_names_neither():
    kb = Knowledge.from_dict({"room": {"id": "x", "title": "t", "host": "h", "currency": "CNY"},
                              "products": [_p("E1", "声波 Air Pro 降噪耳机"),
                                           _p("E2", "耳机保护套（Air Pro专用）"),
                                           _p("E3", "透明手机壳", sizes=["Phone 9", "Phone 9 Pro"])],
                              "promotions": [], "policies": {}, "faq": []})
    assert [p.sku for p in extract(normalize("which case for phone 9 pro"), kb).products] == ["E3"]


def test_every_question_word_looks_up_nothing():
    assert zh_for("sizes") == () and zh_for("size") == ()


# -- small bodies: babies, toddlers, dogs ----------------------------------------------------

@pytest.mark.parametrize("text,height,weight", [
    ("宝宝15斤 67cm 穿哪个码", 67, 7.5),
    ("my son is 80cm and 10kg", 80, 10),
    ("狗狗肩高30 体重7公斤", 30, 7),
    ("柯基 2公斤 肩高16", 16, 2),
])
def test_small_heights_and_one_digit_weights_are_read(text, height, weight):
    from gateway.support.bot.slots import body_measurements

    b = body_measurements(normalize(text))
    assert (b.height_cm, b.weight_kg) == (height, weight)


@pytest.mark.parametrize("text", ["30cm的锅有吗", "5kg的米多少钱", "锅选32的可以不"])
def test_a_products_size_is_not_a_body(text):
    from gateway.support.bot.slots import body_measurements

    b = body_measurements(normalize(text))
    assert b.height_cm is None and b.weight_kg is None, b


def test_toddler_size_by_the_chart_rule(bot):
    kb = Knowledge.from_dict({
        "room": {"id": "x", "title": "t", "host": "h", "currency": "CNY"},
        "products": [_p("T1", "婴儿学步裤", sizes=["M", "L", "XL"], size_chart=[
            {"size": "M", "height_cm": [60, 75], "weight_kg": [6, 9]},
            {"size": "L", "height_cm": [75, 85], "weight_kg": [9, 12]},
            {"size": "XL", "height_cm": [85, 95], "weight_kg": [12, 15]}])],
        "promotions": [], "policies": {}, "faq": []})
    r = ask(bot, kb, "学步裤 宝宝88cm 10kg 穿哪个码")
    assert "建议选 XL" in r.text, r.text  # by height XL, by weight L: the larger


def test_two_questions_in_one_message_get_both_answers(kb):
    out = _compose(kb, "logistics", "头盔多少钱 几天发货")
    assert "48小时" in out and "99元" in out, out
    out = _compose(kb, "price_promo", "头盔多少钱 几天发货")
    assert "48小时" in out and "99元" in out, out
