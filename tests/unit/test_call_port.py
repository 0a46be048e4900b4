"""The support plane's adapter matches the port media declares, method by method.

The two sides never import each other, so nothing but this test (and a type checker)
notices when one changes and the other does not."""

from __future__ import annotations

import inspect
from dataclasses import fields

from gateway.media.port import CallConversation, ConversationPort
from gateway.support import call_port


def _port_methods(proto: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(fn) for name, fn in vars(proto).items()
            if inspect.isfunction(fn) and not name.startswith("_")}


def test_the_adapter_has_every_port_method_with_its_signature():
    port = _port_methods(ConversationPort)
    assert set(port) == {"conversation", "members", "admit_ring", "call_answered", "missed_call",
                         "recorded", "on_resolved", "callback_instead"}
    for name, sig in port.items():
        impl = getattr(call_port.SupportCallPort, name)
        assert inspect.signature(impl) == sig, name
        assert inspect.iscoroutinefunction(impl) == inspect.iscoroutinefunction(
            getattr(ConversationPort, name)), name


def test_the_conversation_copy_has_what_a_call_reads():
    wanted = {name for name, v in vars(CallConversation).items() if isinstance(v, property)}
    assert wanted == {f.name for f in fields(call_port.CallConversation)}
