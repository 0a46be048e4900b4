import pytest

from gateway.support.bot.normalize import detect_lang, normalize
from gateway.support.bot.slots import body_measurements, extract, find_order_id


@pytest.mark.parametrize("text,h,w", [
    ("160 100斤", 160, 50), ("175/130斤", 175, 65), ("身高158 体重45", 158, 45),
    ("一米六五 一百一十斤", 165, 55), ("1.72m 60kg", 172, 60), ("1米7 120斤", 170, 60),
    ("I'm 5'6 and 120 lbs", 168, 54.4), ("185cm 88kg", 185, 88), ("１６０ ９０斤", 160, 45),
])
def test_body_measurements(text, h, w):
    b = body_measurements(normalize(text))
    assert b.height_cm == pytest.approx(h, abs=1)
    assert b.weight_kg == pytest.approx(w, abs=0.6)


def test_no_body_in_prices_or_counts():
    b = body_measurements(normalize("满300减50 买2件"))
    assert b.height_cm is None and b.weight_kg is None


@pytest.mark.parametrize("text,sku", [
    ("瑜伽裤什么面料", "B004"), ("卷发棒还有吗", "B001"), ("is the toothbrush waterproof", "B007"),
    ("the lipstick please", "B002"), ("4号链接多少钱", "B004"), ("b006还有吗", "B006"),
    ("豆沙色还有吗", "B002"), ("foundation price?", "B003"),
])
def test_product_mention(kb_b, text, sku):
    s = extract(normalize(text), kb_b)
    assert s.product is not None and s.product.sku == sku


def test_size_and_order_id(kb_b):
    s = extract(normalize("瑜伽裤L码现在还有吗"), kb_b)
    assert s.size == "L"
    s = extract(normalize("瑜伽裤XL码现在还有吗"), kb_b)
    assert s.size == "XL"
    assert find_order_id(normalize("订单号 2024112512345 想改地址")) == "2024112512345"


def test_language_detection():
    assert detect_lang("卷发棒多少钱") == "zh"
    assert detect_lang("how much is the wand?") == "en"
    assert detect_lang("这个 curling wand 多少钱") == "zh"
