"""The offline support bot: intent, escalation and grounded replies without any model server.

``OfflineBot`` implements :class:`gateway.support.responder.Responder`; ``LLMResponder``
(in :mod:`.llm`) wraps it around an OpenAI-compatible endpoint and falls back to it.
Modules: ``normalize`` (text form, language), ``slots`` (product/size/body/order),
``multiturn`` (history), ``escalation`` (hand-off rules), ``cues`` + ``classifier`` +
``intent`` (intent decision), ``answers`` (replies from live knowledge), ``mood``,
``eval`` (the ``livedesk bot-eval`` command).
"""

from .bot import OfflineBot

__all__ = ["OfflineBot"]
