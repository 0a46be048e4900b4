"""The intent decision's combination and mixed-message rules, independent of the trained model.

Each case gives ``classify`` the classifier's probabilities and the cue scores directly, so
what is tested is the rule (README: intents and primary-intent rules), not the weights.
"""

import pytest

from gateway.support.bot.escalation import EscalationDecision, decide
from gateway.support.bot.intent import CLF_WEIGHT, classify
from gateway.support.bot.normalize import normalize
from gateway.support.bot.slots import Slots
from gateway.support.responder import INTENTS


def _probs(top: str, p: float = 0.8) -> dict[str, float]:
    rest = (1.0 - p) / (len(INTENTS) - 1)
    return {k: (p if k == top else rest) for k in INTENTS}


def _decide(text: str, top: str, p: float = 0.8, cues: dict[str, float] | None = None,
            prev: str | None = None) -> str:
    t = normalize(text)
    return classify(t, Slots(), decide(t), prev, probs=_probs(top, p), cues=cues or {}).intent


@pytest.mark.parametrize("text,top", [
    # a topic question asked angrily keeps its topic (the viewer still wants the answer)
    ("问了好几遍了 这个锅到底多少钱 耍人玩呢", "price_promo"),
    ("what is this blanket made of?? third time asking, ridiculous", "product_info"),
    ("刚买就降价了 给我补差价", "price_promo"),
])
def test_angry_topic_question_keeps_its_topic(text, top):
    assert decide(normalize(text)).escalate
    assert _decide(text, top, cues={"complaint": 2.0}) == top


@pytest.mark.parametrize("text,top", [
    # nothing asked but the venting / the report: complaint, whatever chit-chat the model saw
    ("你们这群骗子 什么破直播间", "other"),
    ("hi, my kid got a rash after using your lotion", "greeting"),
    ("I'm filing a chargeback", "other"),
])
def test_venting_without_a_question_is_complaint(text, top):
    assert decide(normalize(text)).escalate
    assert _decide(text, top) == "complaint"


def test_asking_for_a_person_wins_over_everything():
    text = "价格也太离谱了 找个真人客服跟我说"
    assert _decide(text, "price_promo", 0.95, cues={"price_promo": 4.0, "complaint": 2.0}) == "human_request"


def test_return_request_with_a_defect_is_return_refund():
    assert _decide("这个杯子裂了 我要退货", "complaint") == "return_refund"


def test_a_confident_classifier_outweighs_one_stray_cue():
    # one cue phrase (weight 2.0) for another intent must not overturn a confident model
    assert CLF_WEIGHT * (0.8 - 0.2) > 2.0
    assert _decide("我家猫能吃这个吗", "product_info", 0.8, cues={"complaint": 2.0}) == "product_info"


def test_an_unsure_classifier_follows_the_cues():
    probs = {k: 1.0 / len(INTENTS) for k in INTENTS}
    t = normalize("还有货吗")
    assert classify(t, Slots(), EscalationDecision(False), probs=probs, cues={"stock": 2.0}).intent == "stock"
