"""The typed REST bodies (gateway/rest_bodies.py) and their schemas say what the handlers do.

``login`` and ``token`` parse with the request classes themselves; the order and notice
bodies are still checked by the support plane, so their classes (and the OpenAPI schemas
generated from them) are held here to the same cases as the real endpoints: every body the
schema refuses, the gateway refuses with 400, and the valid ones pass both.
"""

from __future__ import annotations

import jsonschema
import pytest

from gateway.rest_bodies import (
    LoginRequest,
    NewUserRequest,
    NoticeRequest,
    OrderRequest,
    TokenRequest,
    UserChangeRequest,
    parse,
)
from gateway.specs import openapi_document
from gateway.support.room_service import _parse_order
from signaling import ProtocolError
from tests.conftest import start_gateway, stop_gateway


def _schema(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(openapi_document()["components"]["schemas"][name])


ORDER_OK = {"order_id": "o-1", "user": "v-1", "sku": "S1", "qty": 2}
ORDER_BAD = [{}, {**ORDER_OK, "qty": 0}, {**ORDER_OK, "qty": True}, {**ORDER_OK, "qty": 1.5},
             {**ORDER_OK, "order_id": ""}, {**ORDER_OK, "user": 7}, {**ORDER_OK, "sku": None},
             {k: v for k, v in ORDER_OK.items() if k != "sku"}]


def test_order_request_refuses_what_the_support_plane_refuses():
    v = _schema("OrderRequest")
    assert _parse_order(ORDER_OK) and parse(OrderRequest, ORDER_OK).qty == 2
    assert not list(v.iter_errors(ORDER_OK))
    for body in ORDER_BAD:
        with pytest.raises(ProtocolError):
            _parse_order(body)
        with pytest.raises(ProtocolError):
            parse(OrderRequest, body)
        assert list(v.iter_errors(body)), body


def test_login_and_token_bodies():
    v = _schema("LoginRequest")
    assert parse(LoginRequest, {"user": "a", "password": ""}).password == ""
    for body in ({"user": "", "password": "p"}, {"user": "a" * 129, "password": "p"},
                 {"user": "a", "password": 5}, {"password": "p"}, {"user": "a"}):
        with pytest.raises(ProtocolError) as e:
            parse(LoginRequest, body)
        assert e.value.code.value == "bad_request"
        assert list(v.iter_errors(body)), body
    assert parse(TokenRequest, {}) == TokenRequest()
    with pytest.raises(ProtocolError, match="'role' must be a string of 1–32"):
        parse(TokenRequest, {"role": "r" * 33})
    assert list(_schema("TokenRequest").iter_errors({"role": "r" * 33}))


NOTICE_BAD = [{}, {"kind": "nope", "text": "t"}, {"kind": "announcement", "text": ""},
              {"kind": "announcement", "text": "x" * 1001}, {"kind": "restock", "text": "t",
                                                              "skus": "S1"},
              {"kind": "restock", "text": "t", "skus": [""]},
              {"kind": "restock", "text": "t", "orders": ["o"] * 501},
              {"kind": "announcement", "text": 3}]


async def test_notice_request_schema_agrees_with_the_endpoint():
    v = _schema("NoticeRequest")
    gw = await start_gateway()
    try:
        url = f"{gw.url}/api/rooms/{gw.room_id}/notices"
        auth = {"Authorization": f"Bearer {gw.token('service', 'shop-1')}"}
        ok = {"kind": "announcement", "text": "今晚八点开播"}
        assert not list(v.iter_errors(ok))
        async with gw.http.post(url, json=ok, headers=auth) as r:
            assert r.status == 200, await r.text()
        for body in NOTICE_BAD:
            assert list(v.iter_errors(body)), f"the schema accepts {body}"
            with pytest.raises(ProtocolError):
                parse(NoticeRequest, body)
            async with gw.http.post(url, json=body, headers=auth) as r:
                assert r.status == 400, (body, r.status, await r.text())
    finally:
        await stop_gateway(gw)


NEW_USER_OK = {"user": "ann", "roles": ["agent"], "password": "correct horse battery"}
NEW_USER_BAD = [{}, {**NEW_USER_OK, "extra": 1}, {**NEW_USER_OK, "roles": "agent"},
                {**NEW_USER_OK, "roles": [""]}, {**NEW_USER_OK, "roles": ["r" * 33]},
                {**NEW_USER_OK, "capacity": "3"}, {**NEW_USER_OK, "capacity": 1.5},
                {**NEW_USER_OK, "max_compensation": True}, {**NEW_USER_OK, "password": 3},
                {**NEW_USER_OK, "rooms": ["x"] * 33}, {**NEW_USER_OK, "skills": ["s" * 65]},
                {k: v for k, v in NEW_USER_OK.items() if k != "user"}]
CHANGE_BAD = [{}, {"nope": 1}, {"disabled": "yes"}, {"roles": []}, {"roles": "agent"},
              {"password": 5}, {"roles": ["pilot"]}]


def test_account_bodies_refuse_what_the_admin_parsers_refuse():
    from gateway.auth import admin as A

    new, change = _schema("NewUserRequest"), _schema("UserChangeRequest")
    assert A.new_account_from(NEW_USER_OK) and parse(NewUserRequest, NEW_USER_OK)
    assert not list(new.iter_errors(NEW_USER_OK))
    for body in NEW_USER_BAD:
        with pytest.raises(A.AdminError):
            A.new_account_from(body)
        with pytest.raises(ProtocolError):
            parse(NewUserRequest, body)
        assert list(new.iter_errors(body)), body
    # a role that is not a staff role passes the body parser but not add_user: the schema
    # says the combined rule
    assert list(new.iter_errors({**NEW_USER_OK, "roles": ["pilot"]}))
    with pytest.raises(A.AdminError):
        A._roles(A.new_account_from({**NEW_USER_OK, "roles": ["pilot"]}).roles)
    for ok in ({"disabled": True}, {"roles": ["agent", "admin"]}, {"password": "p"}):
        assert A.change_from(ok) and parse(UserChangeRequest, ok) is not None
        assert not list(change.iter_errors(ok)), ok
    for body in CHANGE_BAD:
        with pytest.raises(A.AdminError):
            A.change_from(body)
        with pytest.raises(ProtocolError):
            parse(UserChangeRequest, body)
        assert list(change.iter_errors(body)), body
