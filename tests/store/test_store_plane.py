"""The store is a plane of its own (docs/architecture.md): it knows nothing of HTTP, media,
signaling or the support plane's rules; it reads the support plane's typed change records
(``gateway.support.changes``, the contract every consumer of the change log shares) and
nothing else of that plane. Nothing of signaling, support or media imports it (the composition root
and the HTTP layer do)."""

from __future__ import annotations

from tests.unit.test_imports import IMPORTS, _report, under

RECORDS = "gateway.support.changes"


def test_the_store_imports_no_other_plane():
    bad = [i for i in IMPORTS if under(i.source, "gateway.store") and (
        under(i.target, "gateway.media") or under(i.target, "signaling")
        or under(i.target, "aiohttp") or under(i.target, "gateway.http_api")
        or under(i.target, "gateway.app")
        or (under(i.target, "gateway.support") and not under(i.target, RECORDS)))]
    assert not bad, "gateway/store must stay below the other planes:\n" + _report(bad)


def test_the_store_records_the_support_records_themselves():
    """No record class twice: the store's writes module reads the change records."""
    assert any(i.source == "gateway.store.writes" and under(i.target, RECORDS)
               for i in IMPORTS)


def test_no_plane_imports_the_store():
    bad = [i for i in IMPORTS if under(i.target, "gateway.store") and (
        under(i.source, "signaling") or under(i.source, "gateway.support")
        or under(i.source, "gateway.media"))]
    assert not bad, "signaling, support and media must not import gateway/store:\n" + _report(bad)


def test_the_checks_see_the_store():
    assert any(i.source == "gateway.store.store" for i in IMPORTS)
    assert any(under(i.target, "gateway.store") and i.source == "gateway.durable"
               for i in IMPORTS)
