"""The search rule without a database: how text becomes index terms, how a query becomes
parts and index lookups, and how bad parameters are refused."""

from __future__ import annotations

import pytest

from gateway.store import QueryError, SearchQuery
from gateway.store import terms as T


def test_chinese_runs_become_overlapping_pairs_and_words_stay_words():
    assert T.index_terms("我的蓝牙耳机") == ["我的", "的蓝", "蓝牙", "牙耳", "耳机"]
    assert T.index_terms("好") == ["好"]
    assert T.index_terms("iPhone15手机 ORD-7781！") == ["iphone15", "手机", "ord", "7781"]
    assert T.index_terms("ＡＢＣ１２３") == ["abc123"]  # full width folds to ASCII
    assert T.terms_text("耳机 refund") == "耳机 refund"


def test_query_parts_and_the_terms_they_look_up():
    assert T.query_parts("  耳机   Refund ") == ["耳机", "refund"]
    assert T.query_parts("!!! ...") == []
    assert T.part_terms("蓝牙耳机") == [("蓝牙", False), ("牙耳", False), ("耳机", False)]
    assert T.part_terms("退") == [("退", True)]
    assert T.part_terms("refund") == [("refund", True)]
    # a short prefix narrows nothing when something else is there; alone it is kept
    assert T.match_terms(["订单", "ld"]) == [("订单", False)]
    assert T.match_terms(["ld"]) == [("ld", True)]
    assert T.match_terms(["订单", "ld"], min_prefix=2) == [("订单", False), ("ld", True)]
    assert T.dropped_prefixes(["订单", "ld"]) == ["ld"]
    assert T.dropped_prefixes(["ld"]) == [] and T.dropped_prefixes(["refund"]) == []
    assert T.room_term("直播间") == "zr" + "直播间".encode().hex()


def test_the_rule_is_a_substring_of_one_message():
    assert T.contains_all("我买的蓝牙耳机坏了", ["耳机", "坏"])
    assert not T.contains_all("我买的蓝牙耳机", ["耳机", "坏"])
    assert T.contains_all("The REFUNDED amount", ["refund"])


def test_snippets_center_on_the_match():
    text = "开头" * 100 + "耳机坏了" + "结尾" * 100
    s = T.snippet(text, ["耳机"], 40)
    assert "耳机坏了" in s and s.startswith("…") and s.endswith("…") and len(s) == 42
    assert T.snippet("short", ["x"]) == "short"


def test_a_query_is_parsed_into_typed_values():
    q = SearchQuery.parse({"q": " 耳机 ", "user": "v1", "since": "2026-12-01",
                           "until": "1796601600", "limit": "20"})
    assert q.q == "耳机" and q.user == "v1" and q.limit == 20
    assert q.since == 1796083200.0 and q.until == 1796601600.0
    assert SearchQuery.parse({"since": "2026-12-01T08:00:00+08:00"}).since == 1796083200.0
    assert SearchQuery.parse({}) == SearchQuery()


@pytest.mark.parametrize("params,field", [
    ({"limit": "0"}, "limit"), ({"limit": "-1"}, "limit"), ({"limit": "1e3"}, "limit"),
    ({"since": "nan"}, "since"), ({"since": "-5"}, "since"), ({"until": "soon"}, "until"),
    ({"since": "2026-12-02", "until": "2026-12-01"}, "since"),
    ({"q": "a b c d e f g h i"}, "q"), ({"room": "r\x00"}, "room"), ({"order": ""}, None),
    ({"nope": "1"}, "nope"),
])
def test_bad_parameters_name_their_field(params, field):
    if field is None:
        assert SearchQuery.parse(params).order is None  # empty means not given
        return
    with pytest.raises(QueryError) as e:
        SearchQuery.parse(params)
    assert e.value.field == field and e.value.message
