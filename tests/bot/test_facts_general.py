"""Replies carry the right facts on rooms the bot has never seen (issue 14, fact recall).

Each test builds a small room of its own (no corpus text) and checks one general mechanism
of the product finder (``slots``) or the composer (``answers``)."""

import pytest

from gateway.support.bot.normalize import normalize
from gateway.support.bot.slots import extract, hair_length
from gateway.support.knowledge import Knowledge

PROMO_END = "2030-05-01T22:30:00+08:00"


def _room(products, promotions=(), faq=()):
    return Knowledge.from_dict({
        "room": {"id": "t", "title": "测试间", "host": "阿青", "currency": "CNY"},
        "products": list(products),
        "promotions": list(promotions),
        "policies": {"shipping": "现货48小时内发货", "returns": "7天无理由", "payment": "支持花呗", "invoice": "可开电子发票"},
        "faq": list(faq),
    })


def _p(sku, name, stock=10, sizes=(), attributes=None, price=50, **kw):
    d = {"sku": sku, "name": name, "price": price, "list_price": price * 2, "stock": stock,
         "sizes": list(sizes), "attributes": attributes or {}, "ships_within_hours": 48}
    d.update(kw)
    return d


def _sku(kb, text):
    s = extract(normalize(text), kb)
    return [p.sku for p in s.products]


@pytest.fixture
def shop():
    return _room([
        _p("P1", "青禾 幼儿成长配方奶粉 900g罐装", 31, ["1阶", "2阶", "3阶"],
           {"适用月龄": "1阶0-6月，2阶6-12月，3阶12月以上"}),
        _p("P2", "运动心率手表 蓝牙通话", 12, ["40mm", "44mm"],
           {"选码建议": "腕围160mm以下选40mm，160mm及以上选44mm", "表带": "硅胶"}),
        _p("P3", "智利白对虾 盐冻 2斤装", 0, ["20-30只/kg", "30-40只/kg"], {"产地": "智利", "补货": "下周五到货"}),
        _p("P4", "东北长粒香大米 新米", 200, ["5kg", "10kg"], {"10kg价格": "119元", "产地": "黑龙江"}),
        _p("P5", "便携榨汁杯 400ml", 15, ["粉色", "白色"], {"容量": "400ml"}),
        _p("P6", "家用空气炸锅 5L 大容量", 60, ["白色", "绿色"], {"容量": "5L", "功率": "1400W"}),
        _p("P7", "20000mAh 自带线充电宝", 5, ["黑色", "蓝色"], {"重量": "350g"}),
        _p("P8", "抗菌双面菜板 家用", 40, ["小号30×20cm", "大号40×28cm"],
           {"尺寸建议": "一两个人选小号30×20cm，常剁骨头选大号40×28cm"}),
        _p("P9", "氨基酸温和洁面乳", 70, ["100g"], {"产地": "上海"}),
        _p("P10", "冬被 加厚羽绒被芯", 20, ["150x200cm", "200x230cm", "220x240cm"],
           {"1.2米床": "150x200cm", "1.5米床": "200x230cm", "1.8米床": "220x240cm", "填充物": "白鸭绒"}),
        _p("P11", "磁吸透明手机壳 iPhone16系列", 90, ["iPhone16", "iPhone16 Pro"], {"材质": "TPU"}),
        _p("P12", "防水耳机收纳包", 3, ["黑"], {"材质": "尼龙"}),
    ], promotions=[
        {"id": "g1", "kind": "first_n_gift", "text": "手表前40单送表带一根", "limit": 40, "claimed": 10,
         "gift": "P12", "sku": "P2", "ends_at": PROMO_END},
        {"id": "d1", "kind": "discount", "text": "全场满200减25，可以和券叠加", "threshold": 200, "amount": 25,
         "ends_at": PROMO_END},
        {"id": "c1", "kind": "coupon", "text": "口令QINGHE15 满120减15", "threshold": 120, "amount": 15,
         "code": "QINGHE15", "ends_at": PROMO_END},
        {"id": "b1", "kind": "bundle", "text": "大米加菜板立减12", "sku": "P4+P8", "amount": 12, "ends_at": PROMO_END},
    ])


# ---- product finder -------------------------------------------------------------------------

def test_variant_listed_by_one_product_names_it(shop):
    assert _sku(shop, "2阶还有吗") == ["P1"]
    assert _sku(shop, "44mm的还有货吗") == ["P2"]
    assert _sku(shop, "have the iphone 16 pro one?") == ["P11"]  # spaces between letters and digits


def test_measured_number_is_not_a_variant(shop):
    assert _sku(shop, "手腕周长44mm") == []


def test_units_compare_equal_in_names_and_variants(shop):
    assert _sku(shop, "10公斤的多少钱") == ["P4"]
    assert _sku(shop, "菜板30×20还有吗") == ["P8"]


def test_head_noun_character_only_this_product_has(shop):
    assert _sku(shop, "虾还会补吗") == ["P3"]
    assert _sku(shop, "被子还有吗") == ["P10"]
    assert _sku(shop, "成分是啥") == []  # a character inside a word of a name does not count


def test_two_word_english_shop_noun(shop):
    assert _sku(shop, "is the power bank in stock") == ["P7"]
    assert _sku(shop, "board still available?") == ["P8"]


def test_shop_synonym_names_product(shop):
    assert _sku(shop, "洗面奶哪里产的") == ["P9"]


def test_property_and_quantity_words_in_names_are_weak(shop):
    assert _sku(shop, "榨汁杯多大容量") == ["P5"]
    assert _sku(shop, "体重5kg的狗") == []  # a measured weight is not the rice's 5kg
    kb = _room([_p("A", "鸡肉狗粮 10kg"), _p("B", "狗狗胸背带 反光")])
    assert _sku(kb, "狗狗10kg 背带选啥") == ["B"]  # a pack size in a name is weak


def test_ascii_fragment_does_not_split_a_word(shop):
    assert _sku(shop, "how many left, the white ones") == []


def test_english_length_words_need_hair():
    assert hair_length(normalize("medium skin, which shade")) is None
    assert hair_length(normalize("my hair is long, which barrel")) == "long"


# ---- composer -------------------------------------------------------------------------------

def test_variant_price_without_the_deal_list(ask, shop):
    r = ask(shop, "10公斤的米多少钱")
    assert r.intent == "price_promo"
    assert "119" in r.text and "QINGHE15" not in r.text and "满200减25" not in r.text, r.text


def test_when_does_the_deal_end(ask, shop):
    for q, lang in (("活动到几点结束", "zh"), ("when does the coupon expire?", "en")):
        r = ask(shop, q, lang=lang)
        assert "2030-05-01 22:30" in r.text, r.text
        assert len(r.text) < 120, r.text


def test_promotion_named_by_its_numbers_or_code(ask, shop):
    r = ask(shop, "那个满120减15的码呢")
    assert "QINGHE15" in r.text, r.text
    r = ask(shop, "满200减25能和券一起用吗")
    assert "叠加" in r.text, r.text


def test_gift_that_is_a_product_is_named_and_capped_by_its_stock(ask, shop):
    r = ask(shop, "手表送的还有名额吗")
    assert "防水耳机收纳包" in r.text and "30" in r.text and "3" in r.text, r.text
    assert "P12" not in r.text


def test_restock_note_for_sold_out_product(ask, shop):
    r = ask(shop, "虾什么时候补货")
    assert r.intent == "stock"
    assert "下周五到货" in r.text, r.text


def test_size_advice_quotes_choosing_attribute_with_viewer_numbers(ask, shop):
    r = ask(shop, "我家床1米5 被子选多大")
    assert r.intent == "size_advice"
    assert "1.5米床：200x230cm" in r.text and "1.8米床" not in r.text, r.text


def test_size_advice_without_product_picks_the_product_it_fits(ask, shop):
    r = ask(shop, "手腕一圈150mm 选哪个")
    assert "40mm" in r.text and "选码建议" in r.text, r.text
    assert "菜板" not in r.text and "奶粉" not in r.text, r.text


def test_follow_up_by_variant_keeps_the_product(ask, shop):
    r = ask(shop, "那2阶呢", history=["3阶还有吗"])
    assert r.intent == "stock"
    assert "31" in r.text, r.text
