import pytest

from gateway.support.bot.escalation import decide
from gateway.support.bot.normalize import normalize


@pytest.mark.parametrize("text,reason", [
    ("什么破玩意 垃圾", "anger"), ("你们就是骗子", "anger"), ("this is a scam", "anger"),
    ("再不退款我就打12315", "threat"), ("去消协投诉你们", "threat"), ("给你差评", "threat"),
    ("I'll file a chargeback with my bank", "threat"), ("我要起诉你们", "threat"), ("leaving a 1-star review", "threat"),
    ("必须赔偿我的损失", "compensation"), ("刚买就降价 给我补差价", "compensation"), ("还要赔精神损失费", "compensation"),
    ("涂了以后嘴唇过敏了", "health"), ("面膜敷完脸上起疹子", "health"), ("吃了牛肉干食物中毒", "health"),
    ("卷发棒把我耳朵烫伤了", "health"), ("牙刷充电器发烫还冒烟", "health"), ("I got a rash after using it", "health"),
    ("the charger is overheating", "health"), ("my son threw up after eating the nuts", "health"),
    ("帮我转接人工", "human"), ("能连麦吗", "human"), ("给我打电话", "human"), ("video call please", "human"),
    ("I want to talk to a real person", "human"),
])
def test_escalates(text, reason):
    d = decide(normalize(text))
    assert d.escalate and reason in d.reasons, d


@pytest.mark.parametrize("text", [
    "有点小失望", "颜色和直播间稍微有点不一样", "a bit disappointed with the colour", "快递到哪了",
    "敏感肌能用吗 会不会过敏", "卷发棒最高多少度", "is it safe for sensitive skin?", "will the wand overheat?",
    "背景音乐是啥", "退款几天到账", "不需要人工 我自己看看", "给个好评", "质量一般般",
])
def test_calm_messages_do_not_escalate(text):
    assert not decide(normalize(text)).escalate


@pytest.mark.parametrize("text,intent", [
    ("口红掉色严重 我要退货", "return_refund"),
    ("牙刷坏了 太垃圾了", "complaint"),
    ("发货太慢了 等了一周 什么破店 我要投诉", "complaint"),
    ("我的快递到哪了", "logistics"),
    ("用了面膜起疹子了", "complaint"),
    ("太生气了 给我找人工客服", "human_request"),
])
def test_primary_intent_rules(ask, kb_b, text, intent):
    assert ask(kb_b, text).intent == intent


@pytest.mark.parametrize("text", [
    "空气炸锅多少钱",  # 气炸 inside 空气炸锅 (air fryer) is not anger
    "把收货电话改成 13812345678",  # a phone number holding 12345 is not a hotline threat
    "can you change the phone number on my order",  # an order's phone number is not a call
])
def test_words_inside_other_words_do_not_escalate(text):
    assert not decide(normalize(text)).escalate


@pytest.mark.parametrize("text", ["what's your customer service phone number", "我要打12345热线投诉你们"])
def test_the_same_words_standing_alone_still_escalate(text):
    assert decide(normalize(text)).escalate
