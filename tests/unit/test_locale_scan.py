"""The locale scan of the browser walk (tests/e2e/page_checks.py) finds what it must find and
lets through only the documented exceptions (docs/testing.md "Locale scan")."""

from __future__ import annotations

from tests.e2e.page_checks import scan_problems

DATA = ["三合一防水冲锋衣", "SHANYUE30", "Alice"]


def texts(*s: str) -> list[dict]:
    return [{"text": x, "where": "t"} for x in s]


def test_chinese_in_the_english_ui_is_found_unless_it_is_data():
    bad = scan_problems(texts("Stock · 三合一防水冲锋衣", "库存 left", "Sign in", "中文"), "en", DATA)
    assert bad == ["t: '库存 left'"]


def test_latin_words_in_the_chinese_ui_are_found_unless_allowed():
    bad = scan_problems(texts("券码 SHANYUE30", "客服 Alice 为您服务", "add D001 to cart", "还有M码吗",
                              "需以 --data-dir 或 LIVEDESK_DATABASE_URL 启动", "EN", "剩 {promo.P1.left} 个",
                              "首次响应 p50", "Support"), "zh", DATA)
    assert bad == ["t: 'add D001 to cart' (add, to, cart)", "t: 'Support' (Support)"]
