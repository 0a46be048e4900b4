"""Escalation rules: when a conversation must go to a person, whatever the classifier says.

Owns the README's escalation rule as explicit, auditable patterns (Chinese and English):
an explicit request for a human / phone / voice or video call / 连麦; anger or insults;
threats of a bad review, a report (12315, 消协, the platform), legal action or a
chargeback; demands for compensation (赔偿, 补差价, 精神损失费); and health or safety
problems (allergy, rash, burn, food poisoning, a device overheating) - the last one
however calmly it is told, but not when the viewer only asks *whether* something could
happen ("敏感肌会过敏吗"). Mild disappointment and calm problem reports never escalate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HUMAN = re.compile(
    r"转\s?人工|人工客服|真人客服|找人工|要人工|人工服务|接人工|^人工$|^人工[!！。?？]*$|叫人工|人工呢|有人工|人工在|"
    r"真人|活人|客服电话|电话客服|打电话|来电话|给我打|电话联系|回电|语音通话|视频通话|语音聊|视频聊|"
    r"打视频|开视频|视频连线|语音连线|连麦|连个麦|上麦|找你们(?:老板|经理|负责人)|叫(?:你们)?(?:老板|经理|负责人|主管)|"
    r"找(?:真|个)?人(?:工|聊|说)|跟人说|和人说|"
    r"\b(?:real|actual|live|human) (?:person|human|agent|people|being)\b|\bhuman agent\b|\bto a human\b|"
    r"\b(?:talk|speak|chat) (?:to|with) (?:a |an |someone|somebody|your |the )?(?:human|person|agent|manager|supervisor|someone|somebody|representative|rep|staff)|"
    r"\b(?:call|phone) me\b|\bphone (?:call|support)\b|"
    r"\b(?:your|a|any|the shop'?s|customer (?:service|care)|support|contact|hotline) (?:phone )?number\b|"
    r"\bphone number (?:to call|for (?:support|customer))|\bvideo (?:call|chat)\b|\bvoice (?:call|chat)\b|"
    r"\bcall (?:with|you)\b|\bget (?:me )?(?:a|an) (?:human|agent|person|manager)\b|\bhuman please\b|\bnot a bot\b|"
    r"\bno (?:more )?bots?\b|\boperator\b|\bjoin (?:the )?(?:stream|live) (?:call|mic)\b|\bco-?host\b|\bon mic\b"
)
INSULT = re.compile(
    r"垃圾|骗子|骗人|坑人|坑爹|黑心|无良|傻[逼bB]|\bsb\b|煞笔|脑残|滚|去死|恶心死|什么玩意|什么东西啊|破玩意|"
    r"破(?:东西|衣服|裤子|玩意|货|质量)|太坑|坑钱|智障|废物|混蛋|王八|他妈|tmd|妈的|尼玛|你妈|气死|"
    r"恶心|奸商|割韭菜|诈骗|骗钱|忽悠|糊弄|耍人|搞什么|搞什么鬼|什么破|太离谱|离谱|无耻|不要脸|"
    r"欺骗|欺诈|虚假宣传|受不了了|忍无可忍|火大|生气|(?<!空)气炸|愤怒|被坑|黑店|过分|欺负人|气人|再也不买|拉黑|取关|"
    r"什么态度|耍我|玩我|当我傻|死人|不要脸|脸都不要|卖假货|就是假货|一群骗|"
    r"你们怎么回事|到底怎么回事|有病|搞笑呢|开玩笑呢|"
    r"\bscam(?:mer|mers|s)?\b|\bfraud\b|\bgarbage\b|\btrash\b|\bcrap\b|\bshit\b|\bwtf\b|\bfuck|\bidiot|\bstupid\b|"
    r"\bridiculous\b|\bunacceptable\b|\bdisgusting\b|\bpathetic\b|\bworst\b|\bliars?\b|\blying\b|\bfurious\b|"
    r"\bangry\b|\bpissed\b|\bterrible\b|\bhorrible\b|\bjoke\b|\bripped? off\b|\brip-?off\b|\bcheat(?:ed|ers?)?\b"
)
THREAT = re.compile(
    r"差评|(?<!\d)(?:12315|12345)(?!\d)|消协|消费者协会|投诉|举报|工商|市场监管|平台介入|找平台|"
    r"告你|告你们|起诉|律师|法院|报警|维权|曝光|媒体|退款不退.*(?:投诉|告)|拒付|退单|信用卡.*(?:撤销|争议)|"
    r"\bbad review\b|\bnegative review\b|\b1[- ]?star\b|\bone[- ]?star\b|\breport (?:you|this|your|the)\b|"
    r"\breporting\b|\bconsumer (?:association|council|protection)\b|\bplatform\b|\blawyer\b|\bsue\b|\blegal\b|"
    r"\bcourt\b|\bchargeback\b|\bcharge back\b|\bdispute (?:the|this|it|with)\b|\bbank dispute\b|\bpolice\b"
)
COMPENSATION = re.compile(
    r"赔偿|赔钱|赔我|赔付|赔.{0,2}(?:倍|三|十)|假一赔|退一赔|怎么赔|赔点|给个说法|给我个说法|必须赔|要赔|补偿|补差价|差价|精神损失|损失费|退差价|"
    r"\bcompensat\w*|\bprice (?:difference|adjustment|match)\b|\bdifference back\b|\brefund the difference\b|"
    r"\bpay (?:me )?back the difference\b|\bpay for (?:my|the) (?:damage|doctor|hospital|bill)"
)
HEALTH = re.compile(
    r"过敏|起疹|红疹|疹子|皮疹|湿疹|荨麻疹|起痘|爆痘|闷痘|红肿|刺痛|灼痛|灼伤|烫伤|烧伤|烫到|烫红|烫起泡|起泡了|"
    r"食物中毒|中毒|拉肚子|腹泻|呕吐|吐了|肚子疼|肚子痛|胃疼|头晕|恶心想吐|发霉|霉变|长毛了|变质|吃出|异物|虫子|"
    r"发烫|过热|烫手|很烫|特别烫|好烫|烫得|冒烟|着火|起火|焦味|烧焦|漏电|电到|触电|爆炸|炸了|短路|划伤|割伤|流血|"
    r"鼓包|火花|发红|红点|起红|痒|肿了|不舒服|吃坏|上吐下泻|头疼|头痛|喉咙痛|医院|就医|看医生|住院|急诊|"
    r"\bhospital|\bdoctor\b|\bER\b|"
    r"\ballerg\w*|\brash\b|\bhives\b|\bbreak(?:ing)? out\b|\bbroke out\b|\bitch\w*|\bswell\w*|\bburn(?:ed|t|s|ing)?\b|"
    r"\bfood poisoning\b|\bpoison\w*|\bdiarrh\w*|\bvomit\w*|\bthrew up\b|\bthrow(?:ing)? up\b|\bsick\b|\bmold\w*|\bmould\w*|"
    r"\boverheat\w*|\bsmok(?:e|ing)\b|\bsparks?\b|\bcaught fire\b|\bon fire\b|\belectric shock\b|\bshocked me\b|"
    r"\bmelt(?:ed|ing)?\b|\bexplod\w*|\bsuper hot\b|\bway too hot\b|\btoo hot to (?:touch|hold)\b|\bcut (?:my|me)\b|\bbleed\w*"
)
# a question about whether something *could* happen is not a report
HEALTH_HYPOTHETICAL = re.compile(
    r"会不会|会.{0,6}吗|能不能用|能用吗|可以用吗|适合.{0,6}吗|敏感肌|过敏体质|易过敏|孕妇|宝宝能|小孩能|防过敏|"
    r"低敏|不会过敏|不过敏|抗过敏|温度|多少度|几度|怕烫|防烫|"
    r"\bwill (?:it|the|this|they|that)\b|\bwould it\b|\bcould it\b|\bcan (?:it|the|this) (?:get|be)\b|\bdoes (?:it|the|this) get\b|"
    r"\bdoes it (?:cause|get|overheat)|\bis it safe\b|\bsafe for\b|\bsensitive skin\b|"
    r"\bif i(?:'m| am) allergic\b|\bi(?:'m| am) allergic to\b.*\?|\bany allergens?\b|\bhypoallergenic\b|\bcan i use\b"
)
HEALTH_REPORT = re.compile(
    r"了|过后|之后|以后|后来|现在|用完|吃完|一用|一吃|刚用|我脸|脸上|皮肤|手上|嘴|孩子|宝宝|家人|整个|全是|"
    r"\bgot\b|\bgave me\b|\bafter\b|\bnow\b|\bmy\b|\bbroke\b|\bstarted\b|\bi have\b|\bi've\b|\bi'm\b|\bwe\b"
)
STRONG_NEG = re.compile(r"[!！]{3,}|[?？]{3,}")
MILD = re.compile(r"有点|有些|一点|小失望|有点失望|略|稍微|a bit|a little|slightly|kind of|kinda|somewhat")


@dataclass
class EscalationDecision:
    escalate: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def human(self) -> bool:
        return "human" in self.reasons


DEVICE_DANGER = re.compile(r"发烫|过热|烫手|烫得|特别烫|冒烟|着火|起火|焦味|烧焦|鼓包|火花|漏电|触电|短路|爆炸|"
                           r"overheat|smok(?:e|ing)|sparks?|caught fire|on fire|electric shock|melt")


def health_problem(text: str) -> bool:
    if not HEALTH.search(text):
        return False
    if DEVICE_DANGER.search(text) and not HEALTH_HYPOTHETICAL.search(text):
        return True
    if HEALTH_HYPOTHETICAL.search(text) and not re.search(
            r"(?:过敏|疹|肿|痒|痛|烫伤|烧伤|拉肚子|吐)了|起了|出现|\bgot\b|\bgave me\b|\bbroke out\b|\bafter (?:using|eating|use)", text):
        return False
    return bool(HEALTH_REPORT.search(text)) or len(text) <= 12


def decide(text: str) -> EscalationDecision:
    """Apply the escalation rule to one normalised message."""
    reasons: list[str] = []
    if HUMAN.search(text) and not re.search(r"不(?:用|要|需要)(?:转)?人工|no need (?:for|to)|don't need (?:a|to)", text):
        reasons.append("human")
    if THREAT.search(text) and not re.search(r"好评|五星|5星|\bgood review\b|\b5[- ]?star\b|platform (?:is|are)", text):
        reasons.append("threat")
    if COMPENSATION.search(text):
        reasons.append("compensation")
    if health_problem(text):
        reasons.append("health")
    if INSULT.search(text) and not MILD.search(text[:6]) and not re.search(r"不生气|没生气|not angry", text):
        reasons.append("anger")
    elif STRONG_NEG.search(text) and re.search(r"怎么|还不|什么|why|where|still|again|又", text) or (
            re.search(r"[!！]{2,}", text) and re.search(r"差|烂|坏|慢|骗|退钱|没人|不回|失望|worst|broken|refund|never", text)):
        reasons.append("anger")
    return EscalationDecision(bool(reasons), reasons)
