"""Reply composition, grounded in the room's live knowledge.

Owns what the bot says for each intent, in Chinese or English. Every number in a reply is
read from the :class:`Knowledge` object passed in at that moment - stock, price, gifts left
(``Promotion.gifts_left``), coupon codes, ship windows, policy text - never remembered
from an earlier message, so a host changing the room is reflected in the next answer.
Size advice follows the README rule: the chart row for the height and the row for the
weight; if they differ, the larger size. Sizes that are not on a chart (a curling-wand
barrel, a shade) come from the product's attributes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from ..knowledge import FaqEntry, Knowledge, Product, Promotion, SizeRow
from . import variants
from .lexicon import zh_for
from .slots import _CHAR_STOP, Body, Slots, fold_units
from .topic import product_by_topic, question_terms

KEY_EN = {"材质": "material", "面料": "fabric", "颜色": "colours", "产地": "origin", "保质期": "shelf life",
          "规格": "size/pack", "配料": "ingredients", "成分": "ingredients", "主要成分": "key ingredients",
          "辣度": "spiciness", "口味": "taste", "洗涤": "care", "版型": "fit", "填充物": "filling",
          "含绒量": "down content", "充绒量": "down fill", "储存": "storage", "尺寸": "dimensions",
          "功率": "power", "续航": "battery", "防水": "waterproof", "质地": "texture", "净含量": "net content",
          "防晒": "sun protection", "适合肤质": "skin type", "弹力": "stretch", "腰型": "rise", "口袋": "pockets",
          "裤型": "cut", "特点": "features", "温度档位": "heat settings", "适用发长": "hair length",
          "发货说明": "shipping note", "刷头": "brush heads", "充电": "charging"}

# question words -> attribute key fragments they ask about
ATTR_HINTS: list[tuple[str, tuple[str, ...]]] = [
    (r"面料|材质|材料|料子|纯棉|棉|毛|什么钢|made of|material|fabric|cotton|wool|polyester", ("材质", "面料", "材料")),
    (r"多重|重量|重不重|挺重|多少克|几克|多少斤|weigh|heavy", ("重量", "克重", "净重", "车重", "单枚重")),
    (r"怎么存|怎么放|能放|放几天|放多久|保存|存放|储存|冰箱|store|keep", ("储存", "存储", "保存", "保质期")),
    (r"怎么吃|怎么做|做法|吃法|怎么泡|冲泡|怎么煮|蒸多久|cook|brew|prepare", ("吃法", "做法", "冲泡", "食用", "烹饪")),
    (r"成分|配料|配方|添加|ingredient|contain|what'?s in", ("配料", "成分")),
    (r"产地|哪里产|哪产|哪里生产|origin|made in|where .*made|from where", ("产地",)),
    (r"保质期|过期|多久|shelf|expir|best before", ("保质期", "储存")),
    (r"颜色|色|colou?r|shade", ("颜色", "色")),
    (r"辣|spicy|hot", ("辣度",)),
    (r"甜|口味|味道|好吃|taste|sweet|flavou?r", ("口味", "辣度")),
    (r"洗|wash|clean", ("洗涤",)),
    (r"绒|down|fill|filling", ("填充物", "含绒量", "充绒量")),
    (r"弹|stretch", ("弹力", "材质", "面料")),
    (r"规格|多少克|几袋|几片|多大|尺寸|容量|size|pack|how many|dimension|ml|weight", ("规格", "尺寸", "净含量")),
    (r"功率|瓦|power|watt", ("功率",)),
    (r"温度|几度|档|temperature|heat", ("温度档位",)),
    (r"续航|电池|充电|battery|charge", ("续航", "充电")),
    (r"防水|waterproof|water", ("防水",)),
    (r"防晒|spf|sun", ("防晒",)),
    (r"肤质|干皮|油皮|敏感|skin", ("适合肤质",)),
    (r"版型|宽松|修身|fit|loose|slim", ("版型", "裤型")),
    (r"口袋|pocket", ("口袋",)),
    (r"质地|texture|matte|finish", ("质地",)),
]


@dataclass
class Ctx:
    kb: Knowledge
    text: str
    lang: str
    slots: Slots
    escalate: bool
    reasons: list[str]
    # the cue lexicon's scores of ``text`` (:mod:`.cues`): what else the message asks
    cues: dict[str, float] = field(default_factory=dict)


def num(x: float | int | None) -> str:
    if x is None:
        return ""
    f = float(x)
    return str(int(f)) if f.is_integer() else f"{f:g}"


def _zh(ctx: Ctx) -> bool:
    return ctx.lang != "en"


@functools.lru_cache(maxsize=8192)
def _bigrams(s: str) -> frozenset[str]:
    """Character bigrams of ``s`` (a message, an FAQ question, a product name): a pure
    function of the string, remembered, because the FAQ matcher compares the message with
    every FAQ entry on every reply and those entries are the same each time."""
    s = re.sub(r"[\s?？!！。，,~～]", "", s.lower())
    return frozenset({s[i:i + 2] for i in range(len(s) - 1)} or {s})


def faq_match(ctx: Ctx, intent: str, threshold: float = 0.34) -> FaqEntry | None:
    q = _bigrams(ctx.text)
    best, best_sim = None, 0.0
    for f in ctx.kb.faq:
        if f.intent and f.intent != intent:
            continue
        fb = _bigrams(f.q)
        sim = len(q & fb) / max(1, len(fb))
        if sim > best_sim:
            best, best_sim = f, sim
    return best if best_sim >= threshold else None


# ---- promotions ----------------------------------------------------------------------------

def product_promos(kb: Knowledge, p: Product | None) -> list[Promotion]:
    out = []
    for pr in kb.promotions:
        if not pr.active:
            continue
        if p is None or p.sku in pr.skus or not pr.skus:
            out.append(pr)
    return out


def gift_stock(kb: Knowledge, pr: Promotion) -> int | None:
    if len(pr.skus) == 1:
        prod = kb.product(pr.skus[0])
        if prod is not None:
            return prod.stock
    return None


def gift_product(kb: Knowledge, pr: Promotion) -> Product | None:
    """The room's product a gift is, when the promotion's ``gift`` is one of its SKUs."""
    return kb.product(pr.gift.strip()) if pr.gift and pr.gift.strip() else None


def gift_name(kb: Knowledge, pr: Promotion, zh: bool) -> str:
    gp = gift_product(kb, pr)
    if gp is not None:
        return gp.name
    return pr.gift or ("赠品" if zh else "the gift")


def gift_line(kb: Knowledge, pr: Promotion, zh: bool) -> str:
    """What is left of a first-N quota, right now. When the product's stock is below the
    quota, both numbers and the reason are said (a quota of 32 with 3 in stock is 3 gifts,
    not "32 left"), so the reply never contradicts itself. A gift that is itself a product
    of the room (``gift`` holds its SKU) is named, and its own stock caps the gifts too."""
    quota = max(0, (pr.limit or 0) - (pr.claimed or 0))
    stock = gift_stock(kb, pr)
    left = pr.gifts_left(stock) or 0
    gift = gift_name(kb, pr, zh)
    gp = gift_product(kb, pr)
    if gp is not None and gp.stock < left:
        if gp.stock <= 0:
            return (f"名额还剩{quota}个，但赠品{gift}已经没有库存了" if zh else
                    f"gift spots left: {quota}, but the gift ({gift}) is out of stock")
        return (f"名额还剩{quota}个，但赠品{gift}库存只剩{gp.stock}件，所以现在最多还能送{gp.stock}份" if zh else
                f"gift spots left: {quota}, but the gift ({gift}) has only {gp.stock} in stock, so at most "
                f"{gp.stock} more can get it")
    if left <= 0 and quota > 0:  # quota left, stock gone
        return (f"名额还剩{quota}个，但库存已经没有了，{gift}暂时送不出了" if zh else
                f"gift spots left: {quota}, but it is out of stock, so no more {gift} for now")
    if left <= 0:
        return (f"{gift}已经送完啦（{pr.limit}个名额已领完）" if zh else
                f"the gifts ({gift}) are all gone: {pr.claimed}/{pr.limit} claimed")
    if stock is not None and left < quota:
        return (f"名额还剩{quota}个，但库存只剩{stock}件，所以现在最多还能送{left}份{gift}" if zh else
                f"gift spots left: {quota}, but stock is down to {stock}, so at most {left} more "
                f"can get {gift}")
    return (f"目前还剩{left}个名额（共{pr.limit}名，已领{pr.claimed}）" if zh else
            f"gift spots left right now: {left} (of {pr.limit}; {pr.claimed} claimed)")


def coupon_line(pr: Promotion, zh: bool) -> str:
    """The code and its condition: what a viewer asking for the coupon needs, nothing else."""
    cond = ""
    if pr.threshold is not None and pr.amount is not None:
        cond = (f"满{num(pr.threshold)}减{num(pr.amount)}" if zh else
                f"¥{num(pr.amount)} off orders from ¥{num(pr.threshold)}")
    elif pr.amount is not None:
        cond = f"立减{num(pr.amount)}元" if zh else f"¥{num(pr.amount)} off"
    if zh:
        # the host's own words carry the condition and the deadline ("今晚12点前有效")
        text = pr.text.strip()
        head = f"券码：{pr.code}" if pr.code else ""
        if cond and (num(pr.threshold) not in text or num(pr.amount) not in text):
            head += f"（{cond}）"
        return f"{head}，「{text}」" if head else f"「{text}」"
    if pr.ends_at:
        cond += ("; " if cond else "") + f"valid until {pr.ends_at.replace('T', ' ')[:16]}"
    if pr.code:
        return f"coupon code: {pr.code}" + (f" ({cond})" if cond else "")
    return f"coupon: {cond}" if cond else "there is a coupon in the room"


def promo_line(kb: Knowledge, pr: Promotion, zh: bool) -> str:
    """One promotion in the reply's language: Chinese quotes the host's own words; English
    describes the same numbers in English (the host's text is Chinese)."""
    text = pr.text.strip()
    if pr.kind == "first_n_gift":
        tail = gift_line(kb, pr, zh)
        if zh:
            return f"「{text}」{tail}"
        return f"first {pr.limit} orders get {gift_name(kb, pr, zh)} - {tail}"
    if pr.kind == "coupon":
        if zh:
            return f"「{text}」" + (f"券码：{pr.code}" if pr.code else "")
        return coupon_line(pr, zh)
    if pr.kind == "bundle":
        names = [bp.name for bp in (kb.product(s) for s in pr.skus) if bp is not None]
        if zh:
            return f"「{text}」（{'+'.join(names)}，立减{num(pr.amount)}元）"
        return f"bundle {' + '.join(names)}: together you save ¥{num(pr.amount)}"
    # discount
    if zh:
        return f"「{text}」"
    if pr.threshold is not None and pr.amount is not None:
        return f"¥{num(pr.amount)} off when you spend ¥{num(pr.threshold)}"
    return "a discount is running in the room" + (f": ¥{num(pr.amount)} off" if pr.amount else "")


def _mentioned_gift_promos(ctx: Ctx) -> list[Promotion]:
    out = []
    for pr in ctx.kb.promotions:
        if pr.kind != "first_n_gift" or not pr.gift:
            continue
        if pr.limit and _names_quota(ctx.text, pr.limit):
            out.append(pr)  # "前200送的那个": the quota's own number
            continue
        gp = gift_product(ctx.kb, pr)
        if gp is not None and gp in ctx.slots.products and not any(p.sku in pr.skus for p in ctx.slots.products):
            out.append(pr)  # the gift product is what the viewer named
            continue
        if _names_gift(ctx.text, gift_name(ctx.kb, pr, True).lower()):
            out.append(pr)
    return out


@functools.lru_cache(maxsize=8192)
def _names_quota(text: str, limit: int) -> bool:
    """The message names a gift quota by its own number ("前200", "200名"): a pure function
    of the text and the quota's limit, remembered (the pattern is built per limit)."""
    return re.search(rf"(?:前|first\s*|top\s*)0*{limit}(?!\d)|(?<!\d){limit}\s*(?:名|单|个名额)", text) is not None


@functools.lru_cache(maxsize=8192)
def _names_gift(text: str, g: str) -> bool:
    """The message names the gift ``g`` (lower case): a Chinese bigram of its name (or its
    last character), or an English word of 3+ letters ("pr" of "Air Pro" is not a mention).
    Remembered per (text, gift name): the same questions recur during a sale."""
    frags = {g[i:i + 2] for i in range(len(g) - 1) if re.fullmatch(r"[\u4e00-\u9fff]{2}", g[i:i + 2])}
    frags |= {g[-1]} if re.match(r"[\u4e00-\u9fff]", g[-1:]) else set()
    return any(f in text for f in frags) or any(
        re.search(rf"\b{w}\b", text) for w in re.findall(r"[a-z]{3,}", g))


def price_line(p: Product, zh: bool, size: str | None = None) -> str:
    extra = price_attr_items(p, size)
    if zh:
        s = f"{p.name}直播价{num(p.price)}元"
        if p.list_price and float(p.list_price) > float(p.price):
            s += f"（原价{num(p.list_price)}元）"
        if extra:
            s += "，" + "；".join(f"{k}：{v}" for k, v in extra)
        return s
    s = f"{p.display_name('en')}: live price ¥{num(p.price)}"
    if p.list_price and float(p.list_price) > float(p.price):
        s += f" (list price: ¥{num(p.list_price)})"
    if extra:
        s += "; " + "; ".join(f"{KEY_EN.get(k, k)} ({k}): {v}" for k, v in extra)
    return s


# ---- size rule ------------------------------------------------------------------------------

def _row_for(chart: list[SizeRow], value: float, attr: str) -> int | None:
    rows = [(i, getattr(r, attr)) for i, r in enumerate(chart) if getattr(r, attr) is not None]
    if not rows:
        return None
    hit = None
    for i, (lo, hi) in rows:
        if lo <= value <= hi:
            hit = i  # on a boundary the later (larger) row wins
    if hit is not None:
        return hit
    if value < rows[0][1][0]:
        return rows[0][0]
    if value > rows[-1][1][1]:
        return rows[-1][0]
    # in a gap between rows: the next larger row
    for i, (lo, _hi) in rows:
        if value < lo:
            return i
    return rows[-1][0]


def recommend_size(p: Product, body: Body) -> tuple[str, str | None, str | None, bool] | None:
    """(size, size by height, size by weight, off_chart) by the README rule, or None."""
    chart = p.size_chart
    if not chart or (body.height_cm is None and body.weight_kg is None):
        return None
    hi = _row_for(chart, body.height_cm, "height_cm") if body.height_cm is not None else None
    wi = _row_for(chart, body.weight_kg, "weight_kg") if body.weight_kg is not None else None
    idx = max(i for i in (hi, wi) if i is not None)
    off = False
    for v, attr in ((body.height_cm, "height_cm"), (body.weight_kg, "weight_kg")):
        if v is None:
            continue
        rng = [getattr(r, attr) for r in chart if getattr(r, attr)]
        if rng and (v < rng[0][0] or v > rng[-1][1]):
            off = True
    return (chart[idx].size, chart[hi].size if hi is not None else None,
            chart[wi].size if wi is not None else None, off)


_ADVICE_KEY = re.compile(r"建议|推荐|选择|选购|选码|换算|尺码|适用|适合|发长|肤色|色号|圈口|说明")


def _size_attr_items(p: Product) -> list[tuple[str, str]]:
    return [(k, v) for k, v in p.attributes.items()
            if re.search(r"适用|建议|推荐|选码|选购|换算|发长|尺码|尺寸|选择|长度|规格|容量|净含量|肤色|肤质|色号|圈口", k)]


def _advice_items(p: Product) -> list[tuple[str, str]]:
    """Attributes about choosing a size/variant: the key says so (选购建议, 圈口建议, 色号推荐,
    尺码换算, 1.5米床) or the value names one of the product's variants after 选."""
    out = []
    sizes = [x.lower() for x in p.sizes if x]
    for k, v in p.attributes.items():
        vl = v.lower()
        names_variant = any(x in vl or x in k.lower() for x in sizes)
        if _ADVICE_KEY.search(k) and (names_variant or re.search(r"选|推荐", v)) or \
                (names_variant and re.search(r"选|适合|推荐", v)) or \
                (re.search(r"\d", k) and any(x in vl for x in sizes)):
            out.append((k, v))
    return out


def _viewer_numbers(text: str) -> list[str]:
    nums = re.findall(r"\d+(?:\.\d+)?", text)
    nums += [f"{a}.{b}" for a, b in re.findall(r"(?<![\d.])(\d)\s*(?:米|m)\s*(\d)(?!\d)", text)]
    return [n for n in nums if n not in ("0", "1")]


def advice_pick(ctx: Ctx, p: Product) -> list[tuple[str, str]]:
    """The advice attributes to quote: those whose key or text holds a number the viewer
    gave ("1.5米床" for "我家床1米5"), else all of them."""
    items = _advice_items(p)
    nums = _viewer_numbers(ctx.text)
    if nums and len(items) > 1:
        keyed = [(k, v) for k, v in items if any(re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", k) for n in nums)]
        if keyed:
            return keyed
    return items


def _relevance(ctx: Ctx, p: Product) -> float:
    """How much a product's size-advice text shares with the message (Chinese bigrams and
    the Chinese for its English words)."""
    blob = " ".join(k + v for k, v in _advice_items(p)) + p.name + " ".join(p.sizes)
    blob = blob.lower()
    t = ctx.text
    grams = {t[i:i + 2] for i in range(len(t) - 1) if re.fullmatch(r"[\u4e00-\u9fff]{2}", t[i:i + 2])}
    score = sum(1.0 for g in grams if g in blob)
    # single characters count for less ("手腕" ~ "腕围"), common ones not at all
    score += 0.5 * sum(1 for ch in set(t) if "\u4e00" <= ch <= "\u9fff" and ch not in _CHAR_STOP
                       and ch in blob and not any(ch in g for g in grams if g in blob))
    for w in re.findall(r"[a-z]{3,}", t):
        zh = zh_for(w)
        if any(z in blob for z in zh[:3] if len(z) >= 2):
            score += 1.0
    keys = " ".join(k for k, _ in _advice_items(p))
    for n in _viewer_numbers(t):  # "床1.5的" ~ the attribute "1.5米床"
        if re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", keys):
            score += 1.0
    for x in p.sizes:
        if x and len(x) >= 2 and x.lower() in t:
            score += 2.0
    if ctx.slots.hair and re.search(r"发|hair", t) and re.search(r"发", blob):
        score += 2.0
    return score


def size_text(ctx: Ctx, p: Product) -> str:
    """The size advice for ``p``: the chart rule, or for a product without a chart the
    variant the message points to by the room's own advice (:mod:`.variants`), said first,
    then what the room says about choosing."""
    out = _size_text(ctx, p)
    if p.size_chart:
        return out
    picks = variants.pick(ctx.text, p, _advice_items(p) or _size_attr_items(p), ctx.slots.size)
    if not picks:
        return out
    if _zh(ctx):
        return f"{p.name}建议选 {' 或 '.join(picks)}。" + out
    return f"For the {p.display_name('en')} we'd pick: {' or '.join(picks)}. " + out


def _size_text(ctx: Ctx, p: Product) -> str:
    zh = _zh(ctx)
    body = ctx.slots.body
    rec = recommend_size(p, body)
    if rec:
        size, by_h, by_w, off = rec
        desc = []
        if body.height_cm is not None:
            desc.append(f"身高{num(body.height_cm)}cm" if zh else f"height {num(body.height_cm)}cm")
        if body.weight_kg is not None:
            desc.append(f"体重{num(body.weight_kg)}kg" if zh else f"weight {num(body.weight_kg)}kg")
        if zh:
            s = f"{'、'.join(desc)}，{p.name}建议选 {size} 码"
            if by_h and by_w and by_h != by_w:
                s += f"（按身高是{by_h}、按体重是{by_w}，两者不一致时选大的那个）"
            if off:
                s += "；您的数据超出了尺码表范围，建议联系客服确认"
            return s + "。"
        s = f"For {' / '.join(desc)} the {p.name} size we recommend is: {size}."
        if by_h and by_w and by_h != by_w:
            s += f" (by height: {by_h}; by weight: {by_w}; when they differ take the larger one)"
        if off:
            s += " You're outside our size chart, so please double-check with an agent."
        return s
    advice = advice_pick(ctx, p) if not p.size_chart else []
    if advice:
        # quote what the room says about choosing, with the viewer's numbers when they gave any
        info = "；".join(f"{k}：{v}" for k, v in advice)
        if zh:
            return f"{p.name}可选：{'/'.join(p.sizes)}。{info}。"
        return f"The {p.name} comes in: {'/'.join(p.sizes)}. " + \
            "; ".join(f"{KEY_EN.get(k, k)} ({k}): {v}" for k, v in advice) + "."
    items = _size_attr_items(p)
    if items and not p.size_chart:
        pick = None
        for _k, v in items:
            for clause in re.split(r"[，,；;。]", v):
                opts = [s for s in p.sizes if s and s.lower() in clause.lower()]
                if not opts:
                    continue
                if ctx.slots.hair == "long" and re.search(r"长|过肩|long", clause):
                    pick = opts[0]
                elif ctx.slots.hair == "short" and re.search(r"短|锁骨|肩上|short", clause):
                    pick = opts[0]
                elif ctx.slots.hair == "medium" and re.search(r"中长|肩|medium", clause):
                    pick = pick or opts[0]
        info = "；".join(f"{k}：{v}" for k, v in items)
        if zh:
            return (f"{p.name}建议选 {pick}。" if pick else f"{p.name}可选：{'/'.join(p.sizes)}。") + info + "。"
        return (f"For the {p.name} we'd pick: {pick}. " if pick else f"The {p.name} comes in {'/'.join(p.sizes)}. ") + \
            "; ".join(f"{KEY_EN.get(k, k)} ({k}): {v}" for k, v in items) + "."
    if p.size_chart:
        rows = "；".join(_chart_row(r, zh) for r in p.size_chart)
        if zh:
            return f"{p.name}尺码表：{rows}。告诉我身高和体重（斤或公斤都行），帮您按表推荐；两者对应码数不一致时选大一码。"
        return f"Size chart for the {p.name}: {rows}. Tell me your height and weight and I'll pick one (if they point to different sizes, take the larger)."
    if p.sizes:
        return (f"{p.name}可选：{'/'.join(p.sizes)}。" if zh else f"The {p.name} comes in: {'/'.join(p.sizes)}.") + \
            attr_text(p, zh, limit=3)
    return f"{p.name}是均码/单一规格，不用选码哦。" if zh else f"The {p.name} is one size only."


def _chart_row(r: SizeRow, zh: bool) -> str:
    parts = [r.size + ":"]
    if r.height_cm:
        parts.append(f"身高{num(r.height_cm[0])}-{num(r.height_cm[1])}cm" if zh else f"height {num(r.height_cm[0])}-{num(r.height_cm[1])}cm")
    if r.weight_kg:
        parts.append(f"体重{num(r.weight_kg[0])}-{num(r.weight_kg[1])}kg" if zh else f"weight {num(r.weight_kg[0])}-{num(r.weight_kg[1])}kg")
    return " ".join(parts)


# ---- product attributes ---------------------------------------------------------------------

def attr_text(p: Product, zh: bool, text: str = "", limit: int | None = None) -> str:
    keys: list[str] = []
    for pat, frags in ATTR_HINTS:
        if text and re.search(pat, text):
            for k in p.attributes:
                if any(f in k for f in frags) and k not in keys:
                    keys.append(k)
    rest = [k for k in p.attributes if k not in keys]
    order = keys + rest
    if limit is not None and not keys:
        order = order[:limit]
    if zh:
        return "；".join(f"{k}：{p.attributes[k]}" for k in order)
    return "; ".join(f"{KEY_EN.get(k, k)} ({k}): {p.attributes[k]}" for k in order)


# ---- per-intent composers -------------------------------------------------------------------

def greeting(ctx: Ctx) -> str:
    if _RECONNECT.search(ctx.text):
        return small_talk_back(ctx)
    kb = ctx.kb
    if _zh(ctx):
        s = f"欢迎来到{kb.room.host or '主播'}的直播间「{kb.room.title}」～"
        promos = [pr for pr in kb.promotions if pr.active][:1]
        if promos:
            s += "今天的福利：" + promo_line(kb, promos[0], True) + "。"
        return s + "有任何问题随时问我哦！"
    s = f"Welcome to {kb.room.host or 'our'}'s live room \"{kb.room.title}\"! "
    return s + "Ask me anything about the products, sizes, deals or shipping."


def _topic_products(ctx: Ctx) -> list[Product]:
    """The product the question is about by what it asks, when it names none (:mod:`.topic`)."""
    p = product_by_topic(ctx.text, ctx.kb)
    return [p] if p is not None else []


def product_info(ctx: Ctx) -> str:
    zh = _zh(ctx)
    faq = faq_match(ctx, "product_info")
    prods = ctx.slots.products[:3] or _topic_products(ctx)
    parts = []
    for p in prods:
        a = attr_text(p, zh, ctx.text)
        extra = ""
        if p.sizes and re.search(r"颜色|色号|色|colou?r|shade|款|variant|option|口味|味道|flavou?r|规格|型号|几种|"
                                 r"哪几|几片|多少片|kinds?|types?|models?|how many", ctx.text):
            extra = ("；可选：" if zh else "; options: ") + "/".join(p.sizes)
        parts.append(f"{p.name}：{a}{extra}。" if zh else f"{p.name} - {a}{extra}.")
    if faq and (not prods or any(_bigrams(p.name) & _bigrams(faq.q) for p in prods)):
        parts.insert(0, faq.a)
    if parts:
        return " ".join(parts)
    return which_product(ctx, "info")


def size_advice(ctx: Ctx) -> str:
    zh = _zh(ctx)
    prods = ctx.slots.products
    body = ctx.slots.body
    has_body = body.height_cm is not None or body.weight_kg is not None
    if len(prods) > 1 or ctx.slots.product_from in ("history", "screen") and not has_body:
        # several candidates (or one from context): the one whose advice fits the message
        scored = sorted(((_relevance(ctx, p), i, p) for i, p in enumerate(prods)), key=lambda x: (-x[0], x[1]))
        if len(prods) > 1 and scored[0][0] > 0 and scored[1][0] == 0:
            prods = [scored[0][2]]  # two things named ("被子和枕头"): both are answered
    if not prods:
        cands = [p for p in ctx.kb.products if p.size_chart or _advice_items(p)]
        scored = sorted(((_relevance(ctx, p), i, p) for i, p in enumerate(cands)), key=lambda x: (-x[0], x[1]))
        if scored and scored[0][0] >= 0.5 and (len(scored) == 1 or scored[0][0] > scored[1][0]) and not (
                has_body and not scored[0][2].size_chart and any(p.size_chart for p in cands)
                and scored[0][0] < 2.0):
            prods = [scored[0][2]]
    if not prods and not has_body:
        prods = _topic_products(ctx)
    if not prods:
        charted = [p for p in ctx.kb.products if p.size_chart]
        if has_body and charted:
            male = re.search(r"男|老公|男朋友|男友|爸|儿子|哥|弟|boyfriend|husband|\bhe\b|\bhim\b|\bhis\b|\bmen|\bdad|brother|son\b", ctx.text)
            female = re.search(r"女|老婆|女朋友|妈|闺蜜|姐|妹|girlfriend|wife|\bshe\b|\bher\b|women|mom|sister|daughter", ctx.text)
            if male and not female:
                charted = [p for p in charted if "男" in p.name] or charted
            elif female and not male:
                charted = [p for p in charted if "女" in p.name] or charted
            prods = charted
        elif ctx.slots.hair:
            prods = [p for p in ctx.kb.products if any("发" in k + v for k, v in _advice_items(p))] or []
    if not prods:
        faq = faq_match(ctx, "size_advice")
        if faq:
            return faq.a
        if zh:
            return "您问的是哪一款呀？发我商品名或链接号，再告诉我身高体重，我按尺码表帮您选～"
        return "Which item is it? Send me its name or link number plus your height and weight, and I'll check the size chart."
    return " ".join(size_text(ctx, p) for p in prods[:4])


def stock(ctx: Ctx) -> str:
    zh = _zh(ctx)
    prods = ctx.slots.products or _topic_products(ctx)
    if not prods:
        return which_product(ctx, "stock")
    lines = []
    for p in prods[:8]:
        size = ctx.slots.size if prods and ctx.slots.size and ctx.slots.size in p.sizes else None
        if p.stock > 0:
            if zh:
                s = f"{p.name}{size + '有货，' if size else ''}目前库存还剩{p.stock}件"
                s += "（所有尺码/颜色合计）" if size else ""
                if p.stock <= 10:
                    s += "，数量不多了，喜欢的抓紧拍"
            else:
                s = f"{p.display_name('en')} - in stock: {p.stock}" + (f" (size {size}: available; the count is for all sizes/colours)" if size else "")
                if p.stock <= 10:
                    s += " - only a few left!"
        else:
            s = f"{p.name}已经售罄（库存0），可以先收藏等补货通知" if zh else f"{p.display_name('en')} - sold out right now (in stock: 0)"
        restock = _restock_attrs(tuple(p.attributes.items()))
        if restock and (p.stock <= 0 or _RESTOCK_Q.search(ctx.text)):
            s += ("，" if zh else "; ") + ("；".join(f"{k}：{v}" for k, v in restock) if zh else
                                          "; ".join(f"restock ({k}): {v}" for k, v in restock))
        lines.append(s)
    if _RESTOCK_Q.search(ctx.text) or any(p.stock <= 0 for p in prods[:2]):
        faq = faq_match(ctx, "stock", threshold=0.25) if _RESTOCK_Q.search(ctx.text) else None
        if faq is None:  # the room's word on restocking this product, whatever it was filed as
            faq = next((f for f in ctx.kb.faq for p in prods[:2] if p.stock <= 0 or _RESTOCK_Q.search(ctx.text)
                        if re.search(r"补货|到货|返场|restock", f.q + f.a)
                        and _bigrams(p.name) & _bigrams(f.q + f.a) - {"补货", "到货"}), None)
        if faq and faq.a not in lines:
            lines.append(faq.a.rstrip("。."))
    if prods:
        for pr in product_promos(ctx.kb, prods[0] if len(prods) == 1 else None):
            if pr.kind == "first_n_gift" and pr.skus and prods[0].sku in pr.skus:
                lines.append(promo_line(ctx.kb, pr, zh))
    return ("；".join(lines) + "。") if zh else ("; ".join(lines) + ".")


@functools.lru_cache(maxsize=4096)
def _restock_attrs(attrs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in attrs if re.search(r"补货|到货|restock", k))


def _mentioned_promos(ctx: Ctx) -> list[Promotion]:
    """Promotions the message points at by their own numbers or code ("满99减20的码呢",
    "ANQI20 是这个吗", "does the 199 discount stack")."""
    out = []
    for pr in ctx.kb.promotions:
        if not pr.active or pr.kind == "first_n_gift":
            continue
        if pr.code and pr.code.lower() in ctx.text:
            out.append(pr)
            continue
        if pr.kind not in ("coupon", "discount"):
            continue
        nums = [num(x) for x in (pr.threshold, pr.amount) if x is not None]
        if nums and all(_names_number(ctx.text, n) for n in nums) and (
                len(nums) == 2 or pr.threshold is not None):
            out.append(pr)
    return out


@functools.lru_cache(maxsize=8192)
def _names_number(text: str, n: str) -> bool:
    """``n`` stands in the text as a number of its own ("满99减20": 99 and 20, not the 9 of
    99). Keyed by the number's text, so a host who changes a threshold gets a new key."""
    return re.search(rf"(?<![\d.]){re.escape(n)}(?![\d.])", text) is not None


_ENDS_Q = re.compile(r"几点结束|几点截止|到几点|什么时候结束|啥时候结束|哪天结束|什么时候截止|截止|结束时间|"
                     r"过期|有效期|还有效|持续到|到什么时候|明天还有|过了还有|今晚过了|还能用多久|"
                     r"when does .*(?:end|expire|finish)|ends? (?:at|when)|until when|expir|how long .*(?:last|valid)|"
                     r"valid until|still valid|deadline|tomorrow")


def ends_text(pr: Promotion) -> str:
    e = (pr.ends_at or "").strip()
    m = re.match(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})", e)
    return f"{m.group(1)} {m.group(2)}" if m else e


def ends_answer(ctx: Ctx, promos: list[Promotion]) -> str | None:
    """A question about when a deal ends: the end time(s) of the promotions it is about."""
    zh = _zh(ctx)
    timed = [pr for pr in promos if pr.active and pr.ends_at]
    if not timed:
        return None
    groups: dict[str, list[Promotion]] = {}
    for pr in timed:
        groups.setdefault(ends_text(pr), []).append(pr)
    parts = []
    for end, prs in groups.items():
        if zh:
            what = "、".join(f"「{pr.text.strip()}」" for pr in prs[:2]) if len(groups) > 1 or len(prs) == 1 else "这些活动"
            parts.append(f"{what}截止到{end}")
        else:
            kinds = ", ".join(dict.fromkeys(pr.kind.replace("first_n_gift", "gift").replace("_", " ") for pr in prs))
            parts.append(f"{kinds}: until {end}")
    if zh:
        return "；".join(parts) + "，以直播间公告为准哦。"
    return "The deals run " + "; ".join(parts) + "."


@functools.lru_cache(maxsize=4096)
def _price_attrs(attrs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in attrs if re.search(r"价|费|price|cost", k))


def price_attr_items(p: Product, size: str | None = None) -> list[tuple[str, str]]:
    """Attributes that price a variant or a part of the product ("10kg价格", "规格价格",
    "今日金价", "工费"): a price question quotes them, the named variant's first."""
    items = list(_price_attrs(tuple(p.attributes.items())))
    if size:
        items.sort(key=lambda kv: 0 if size.lower() in (kv[0] + kv[1]).lower() else 1)
    return items


_RESTOCK_Q = re.compile(r"补货|补吗|补不补|还会补|再补|再上|返场|到货|restock|back in stock|be back|come back|more coming")
_PRICE_Q = re.compile(r"多少钱|价格|价钱|几块|啥价|什么价|多钱|咋卖|怎么卖|怎么算|贵不贵|便宜|💰|how much|price|cost|\$|¥")
_PROMO_Q = re.compile(r"优惠|活动|福利|折|满减|送|赠|名额|前\d+|券|秒杀|到手|最终|还能减|再减|bundle|deal|discount|sale|"
                      r"gift|free|promo|offer|coupon|code|quota|spots?\b|\boff\b|final price")


def which_product(ctx: Ctx, topic: str) -> str:
    """A product question that names no product: ask which one, in one short line."""
    if _zh(ctx):
        what = {"stock": "库存", "price": "价格", "info": "参数", "size": "尺码"}.get(topic, "")
        return f"您问的是哪一款的{what}呀？发我商品名或链接号就好～"
    what = {"stock": "stock", "price": "price", "info": "details", "size": "size"}.get(topic, "")
    return f"Which item do you mean for the {what}? Just send me its name or link number."


def price_promo(ctx: Ctx) -> str:
    zh = _zh(ctx)
    kb = ctx.kb
    prods = ctx.slots.products if ctx.slots.product_from == "text" else ctx.slots.products[:1]
    if not prods and _PRICE_Q.search(ctx.text) and not _PROMO_Q.search(ctx.text):
        prods = _topic_products(ctx)
    lines: list[str] = []
    wants_coupon = re.search(r"券|口令|优惠码|折扣码|(?:的|个|那|这)码|码呢|码是|码多少|啥码|"
                             r"code|coupon|voucher|promo ?code", ctx.text)
    coupons = [pr for pr in kb.promotions if pr.kind == "coupon" and pr.active]
    named = _mentioned_promos(ctx)
    if _ENDS_Q.search(ctx.text) and (not _PRICE_Q.search(ctx.text) or not prods):
        about = named + _mentioned_gift_promos(ctx)
        if not about and wants_coupon:
            about = coupons
        if not about and prods and ctx.slots.product_from == "text":
            about = [pr for pr in kb.promotions if any(p.sku in pr.skus for p in prods)]
        ans = ends_answer(ctx, about or [pr for pr in kb.promotions if pr.active])
        if ans:
            return ans
    if named and not _PRICE_Q.search(ctx.text):
        # "满99减20的码呢", "does the 199 discount stack with the coupon": those promotions
        picked0 = list(named)
        if wants_coupon:
            picked0 += [pr for pr in coupons if pr not in picked0]
        sep = "；" if zh else "; "
        out = sep.join(coupon_line(pr, zh) if pr.kind == "coupon" else promo_line(kb, pr, zh) for pr in picked0)
        return (out + "。") if zh else (out[0].upper() + out[1:] + ".")
    if wants_coupon and coupons and not _PRICE_Q.search(ctx.text):
        sep = "；" if zh else "; "
        out = sep.join(coupon_line(pr, zh) for pr in coupons)
        return (out + "。") if zh else (out[0].upper() + out[1:] + ".")
    if not prods and _PRICE_Q.search(ctx.text) and not _PROMO_Q.search(ctx.text):
        return which_product(ctx, "price")
    gift_promos = _mentioned_gift_promos(ctx)
    picked: list[Promotion] = []
    if gift_promos:
        picked += gift_promos
    if wants_coupon:
        picked += [pr for pr in kb.promotions if pr.kind == "coupon" and pr.active]
    gift_q = re.search(r"送|赠|名额|前\d+|gift|free|giveaway|quota|spots?\b|freebie|first \d+", ctx.text)
    if gift_q and not gift_promos:
        gp = [pr for pr in kb.promotions if pr.kind == "first_n_gift" and pr.active]
        if prods:
            gp = [pr for pr in gp if any(p.sku in pr.skus for p in prods)] or gp
        picked += gp
    if gift_q and picked and not _PRICE_Q.search(ctx.text):
        # a gift question gets what is left of the gift, not the whole price list
        sep = "；" if zh else "; "
        out = sep.join(dict.fromkeys(promo_line(kb, pr, zh) for pr in picked))
        return (out + "。") if zh else (out[0].upper() + out[1:] + ".")
    if re.search(r"一起|两件|搭配|套装|组合|一共|总共|加起来|合计|bundle|both|together|combo|total|whole|outfit", ctx.text):
        picked += [pr for pr in kb.promotions if pr.kind == "bundle" and pr.active
                   and (not prods or any(p.sku in pr.skus for p in prods))]
    price_only = bool(prods) and _PRICE_Q.search(ctx.text) and not _PROMO_Q.search(ctx.text) \
        and not re.search(r"便宜点|便宜些|能便宜|再便宜|便宜吗|cheaper|any deal", ctx.text)
    for p in prods[:3]:
        lines.append(price_line(p, zh, ctx.slots.size))
        for pr in product_promos(kb, p):
            # a price question gets the price (and the variants' prices), not every deal
            if pr.skus and p.sku in pr.skus and not (price_only and pr.kind in ("bundle", "first_n_gift")):
                picked.append(pr)
    if not picked and not prods:
        picked = [pr for pr in kb.promotions if pr.active]
    elif prods and not price_only:
        picked += [pr for pr in kb.promotions if pr.active and not pr.skus and pr.kind in ("coupon", "discount")]
    seen = set()
    for pr in picked:
        if pr.id in seen:
            continue
        seen.add(pr.id)
        lines.append(promo_line(kb, pr, zh))
    if not lines:
        return "现在没有进行中的优惠活动哦。" if zh else "There's no promotion running right now."
    return ("；".join(lines) + "。") if zh else ("; ".join(lines) + ".")


_CHANGE_TO = re.compile(r"改成|换成|改为|换为|改到|换到|要改|想要|change (?:it )?to|switch (?:it )?to|swap (?:it )?(?:to|for)|instead")
_COURIER = re.compile(r"顺丰|快递|中通|圆通|韵达|京东|邮政|运费|courier|express|shipping|\bsf\b")


def _change_rules(ctx: Ctx) -> list[str]:
    """The room's policy sentences about changing an order (how long an address can be
    changed, what a courier upgrade costs): a change request is answered by them."""
    pol = ctx.kb.policies
    return list(_policy_change_clauses(bool(_COURIER.search(ctx.text)), pol.get("shipping") or "",
                                       pol.get("payment") or "", pol.get("returns") or ""))


@functools.lru_cache(maxsize=256)
def _policy_change_clauses(courier: bool, *policies: str) -> tuple[str, ...]:
    """:func:`_change_rules` keyed by the policy texts themselves (a host who edits a policy
    gets a new key), so splitting and searching them is not redone per reply."""
    want = r"改|取消|修改|撤" + (r"|顺丰|快递|运费|补" if courier else "")
    out: list[str] = []
    for text in policies:
        for clause in re.split(r"[；;。]", text):
            c = clause.strip()
            if c and re.search(want, c) and c not in out:
                out.append(c)
    return tuple(out[:3])


def order_change(ctx: Ctx) -> str:
    zh = _zh(ctx)
    faqs = [f for f in ctx.kb.faq if f.intent == "order_change"]
    best = faq_match(ctx, "order_change", threshold=0.2)
    if best:
        faqs = [best] + [f for f in faqs if f is not best]
    oid = ctx.slots.order_id
    p = ctx.slots.product
    target = ctx.slots.size
    m = _CHANGE_TO.search(ctx.text)
    if p is not None and m:  # "拍成220x240了 能换成200x230吗": the variant after the change word
        after = variants.named(ctx.text[m.end():], p)
        target = after[0] if after else target
    rules = _change_rules(ctx)
    if zh:
        s = "好的，订单在未发货前都可以修改（地址、尺码、颜色或取消）。"
        if oid:
            s += f"已记下您的订单号{oid}。"
        if target:
            s += f"想改成{target}的话，可以取消后重拍，或备注给客服修改。"
            if p is not None:
                s += "".join(f"{k}：{v}；" for k, v in price_attr_items(p, target)[:1])
        s += "".join(f.a for f in faqs[:2])
        s += "".join(r + "。" for r in rules if r not in s)
        if p and p.ships_within_hours:
            s += f"{p.name}付款后{p.ships_within_hours}小时内发货，请尽快操作哦。"
        return s
    s = "Sure - orders can be changed (address, size, colour) or cancelled until they ship. "
    if oid:
        s += f"I've noted your order: {oid}. "
    if target:
        s += f"To switch to: {target} - cancel and re-order, or leave a note for our agent. "
        if p is not None:
            s += "".join(f"{k}: {v}. " for k, v in price_attr_items(p, target)[:1])
    s += " ".join(f.a for f in faqs[:2])
    s += "".join(" " + r + "." for r in rules if r not in s)
    if p and p.ships_within_hours:
        s += f" The {p.name} ships within a {p.ships_within_hours}-hour window after payment, so please do it soon."
    return s


def logistics(ctx: Ctx) -> str:
    zh = _zh(ctx)
    kb = ctx.kb
    lines = []
    prods = ctx.slots.products
    if prods:
        for p in prods[:3]:
            if p.ships_within_hours:
                note = p.attributes.get("发货说明", "")
                lines.append((f"{p.name}付款后{p.ships_within_hours}小时内发货" + (f"（{note}）" if note else ""))
                             if zh else f"the {p.display_name('en')} ships within a {p.ships_within_hours}-hour window after payment")
    else:
        faq = faq_match(ctx, "logistics", threshold=0.3)
        if faq:
            lines.append(faq.a)
        hours: dict[int, list[str]] = {}
        for p in kb.products:
            if p.ships_within_hours:
                hours.setdefault(p.ships_within_hours, []).append(p.name)
        if hours:
            if zh:
                lines.append("发货时效：" + "；".join(f"{'、'.join(v)} {h}小时内" for h, v in sorted(hours.items())))
            else:
                lines.append("ship windows: " + "; ".join(f"{', '.join(v)}: {h}-hour" for h, v in sorted(hours.items())))
    pol = kb.policies.get("shipping")
    if pol:
        lines.append(pol if zh else f"shipping policy: {pol}")
    if re.search(r"到哪|物流|单号|没收到|还没到|不动|track|where is|hasn'?t|not arrived|parcel|package", ctx.text):
        lines.append("发货后可在订单详情查看物流单号和轨迹，若物流长时间不更新，发我订单号帮您催件。" if zh else
                     "Once shipped, the tracking number is in your order details; send me your order number if it seems stuck.")
    if zh:
        return "；".join(lines) + ("" if lines and lines[-1].endswith("。") else "。")
    if not lines:
        return "Shipping info is on the product page."
    out = "; ".join(lines)
    return out[0].upper() + out[1:] + ("" if out.endswith(("。", ".")) else ".")


def payment(ctx: Ctx) -> str:
    zh = _zh(ctx)
    pol = ctx.kb.policies
    lines = []
    inv = re.search(r"发票|开票|专票|普票|增值税|抬头|税号|报销|invoice|receipt|fapiao|vat|tax", ctx.text)
    if re.search(r"扣|失败|付不|没成功|charged|declin|fail|error|double|twice", ctx.text):
        lines.append("扣款异常请把订单号发给我，我们核实后会处理，重复扣款会原路退回" if zh else
                     "Sorry about the payment trouble - send me your order number and we'll check it; duplicate charges are refunded to the original method")
    if inv and pol.get("invoice"):
        lines.append(pol["invoice"])
    if pol.get("payment"):
        lines.append(pol["payment"])
    if not inv and pol.get("invoice") and not lines[1:]:
        pass
    if not lines:
        return "支付问题请联系客服处理。" if zh else "Please contact support about payment."
    if zh:
        return "".join(x if x.endswith("。") else x + "。" for x in lines)
    return " ".join(lines[:1]) + (" Policy: " + " ".join(lines[1:]) if len(lines) > 1 else "")


_AFTER_SALE_KEY = re.compile(r"保修|质保|售后|退换|退货|维修|换新|warranty|guarantee|return")


def after_sale_items(p: Product) -> list[tuple[str, str]]:
    """The product's own after-sale terms (a warranty, "刻字后不退换"): they decide a return
    or repair question about that product before the room's general policy does."""
    return [(k, v) for k, v in p.attributes.items()
            if _AFTER_SALE_KEY.search(k) or re.search(r"保修|质保|不退|不换|只换|不修", v)]


def return_refund(ctx: Ctx) -> str:
    zh = _zh(ctx)
    pol = ctx.kb.policies.get("returns", "")
    faq = faq_match(ctx, "return_refund", threshold=0.3)
    own = [(p, k, v) for p in ctx.slots.products[:2] for k, v in after_sale_items(p)]
    s = ""
    if zh:
        s = "".join(f"{p.name}{k}：{v}。" for p, k, v in own)
        s += "售后规则是这样的：" + pol if pol else "售后问题请联系客服。"
        if faq and faq.a not in s:
            s += " " + faq.a
        return s + " 在订单详情点「申请售后」即可办理。"
    s = "".join(f"{p.display_name('en')} - {KEY_EN.get(k, k)} ({k}): {v}. " for p, k, v in own)
    s += ("Here's our return/refund policy: " + pol) if pol else "Please contact support for returns."
    return s + " You can start it from \"after-sales\" in your order details."


def complaint(ctx: Ctx) -> str:
    zh = _zh(ctx)
    r = set(ctx.reasons)
    if zh:
        s = "非常抱歉给您带来不好的体验！"
        if "health" in r:
            s += "请先立即停止使用/食用，如有不适请及时就医。"
        if re.search(r"慢|还没发|没到|等了|发货|物流|快递", ctx.text):
            p = ctx.slots.product
            if p and p.ships_within_hours:
                s += f"{p.name}承诺付款后{p.ships_within_hours}小时内发货，"
            s += "我们会帮您催仓库和快递。"
        pol = ctx.kb.policies.get("returns")
        if pol and re.search(r"质量|坏|破|缩水|掉色|起球|线头|色差|不一样|不符|发错|少发|过期|变质|异味|broke|defect|quality|faded|shrank|wrong|damaged", ctx.text):
            s += "质量问题可以申请售后：" + pol
        if not ctx.escalate:
            s += "您的反馈已记录，需要处理的话随时告诉我。"
        return s
    s = "We're really sorry about this experience. "
    if "health" in r:
        s += "Please stop using the product right away and see a doctor if you feel unwell. "
    pol = ctx.kb.policies.get("returns")
    if pol and re.search(r"quality|broke|defect|faded|shrank|wrong|damaged|torn|not as described|different", ctx.text):
        s += "Quality problems are covered by our after-sales policy: " + pol + " "
    if not ctx.escalate:
        s += "Your feedback is logged - tell me if you'd like us to fix it."
    return s.strip()


def human_request(ctx: Ctx) -> str:
    if _zh(ctx):
        return "好的，正在为您转接人工客服，请稍等片刻～人工客服也可以和您语音或视频连线。"
    return "Sure - I'm connecting you to a human agent now, please hold on a moment. They can also do a voice or video call with you."


_RECONNECT = re.compile(r"断线|掉线|断网|卡了|卡住|网不好|网络不好|信号不好|刚才.{0,4}(?:卡|断)|还在吗|在吗|在不在|"
                        r"刷新|重新进|lag|froze|frozen|disconnect|dropped|reconnect|still there|"
                        r"you there|anyone there|back now|i'?m back|wifi")


def small_talk_back(ctx: Ctx) -> str:
    """Reconnect chatter ("刚才卡了 还在吗") gets small talk, not the room's price list."""
    return ("在的在的～刚才网络可能有点卡，现在好啦，有问题随时问我！" if _zh(ctx) else
            "Still here! Looks like the connection hiccuped - ask me anything.")


def other(ctx: Ctx) -> str:
    faq = faq_match(ctx, "other", threshold=0.5)
    if faq:
        return faq.a
    if _RECONNECT.search(ctx.text):
        return small_talk_back(ctx)
    if _zh(ctx):
        return "这个小助手暂时回答不了哦～商品、尺码、库存、优惠、物流、售后的问题都可以问我，主播也会在直播里回复大家！"
    return "I can't help with that one, sorry! Ask me about products, sizes, stock, deals, shipping or returns anytime."


COMPOSERS = {
    "greeting": greeting, "product_info": product_info, "size_advice": size_advice, "stock": stock,
    "price_promo": price_promo, "order_change": order_change, "logistics": logistics, "payment": payment,
    "return_refund": return_refund, "complaint": complaint, "human_request": human_request, "other": other,
}

HANDOFF_ZH = "已为您转接人工客服，稍后会有专人跟进处理，请稍等。"
HANDOFF_EN = "I'm connecting you to a human agent who will follow up shortly."


# the composers that can leave a plainly asked number out: an angry stock question the
# writers label stock may be read as a complaint, "那这个多少" as product_info
_ALSO_STOCK = frozenset({"complaint", "product_info", "other", "greeting", "logistics", "size_advice", "price_promo"})
# "那这个多少" after naming a product: its price
_BARE_HOW_MUCH = re.compile(r"^(?:那|那么)?(?:这个|那个|它|这款|那款)?(?:呢)?\s*多少[?？!！。~～\s]*$")
_ALSO_PRICE = frozenset({"complaint", "product_info", "other", "greeting", "size_advice", "stock", "logistics"})
_ALSO_SHIP = frozenset({"complaint", "product_info", "other", "stock", "size_advice", "price_promo"})
# a message that asks something (the topic fallback is for questions only)
_ASKS = re.compile(r"[?？吗呢]|多少|什么|啥|哪|几|怎么|能不能|是不是|有没有|会不会|\b(?:how|what|which|does|do|is|are|can)\b")
_ALSO_SIZE = frozenset({"complaint", "other", "greeting", "order_change", "product_info", "stock", "price_promo"})
_ALSO_PROMO = frozenset({"complaint", "other", "product_info", "order_change", "payment", "size_advice"})
_ALSO_FEE = frozenset({"price_promo", "order_change", "payment", "other", "complaint", "product_info", "stock"})
_SHIP_FEE_Q = re.compile(r"运费|邮费|包邮|顺丰|京东快递|改快递|换快递|偏远|shipping (?:fee|cost)|postage|"
                         r"free shipping|express|courier|deliver\w* (?:fee|cost|charge)")
_ALSO_ATTR = frozenset({"complaint", "other", "greeting", "price_promo", "stock", "size_advice", "logistics",
                        "payment", "order_change", "return_refund"})
_SHIP_Q = re.compile(r"发货|几号发|什么时候发|啥时候发|多久发|几天发|发出|快递|物流|什么时候到|几天到|多久到|"
                     r"ship|deliver|dispatch|arrive")


@functools.lru_cache(maxsize=8192)
def _hinted_keys(text: str) -> tuple[str, ...]:
    """Attribute key fragments the question words ask for (``ATTR_HINTS``: "多重" → 重量)."""
    return tuple(f for pat, frags in ATTR_HINTS if re.search(pat, text) for f in frags)


@functools.lru_cache(maxsize=16384)
def _folded(s: str) -> str:
    return fold_units(s.lower())


def asked_attributes(ctx: Ctx, p: Product, limit: int = 2) -> list[tuple[str, str]]:
    """The attributes of ``p`` the message asks about by their own words: a word of the
    question in the attribute's key (转速, 动力储存) counts double, in its value once;
    words every attribute text shares say nothing (:func:`.topic.question_terms`)."""
    if not p.attributes:
        return []
    return list(_asked(ctx.text, tuple(p.attributes.items()), limit))


@functools.lru_cache(maxsize=8192)
def _asked(text: str, attrs: tuple[tuple[str, str], ...], limit: int) -> tuple[tuple[str, str], ...]:
    """:func:`asked_attributes`, a pure function of the text and the attribute texts (never
    of stock or prices), remembered: it scores every attribute against every question word,
    the largest per-reply cost of :func:`also_answer` when a viewer repeats a question."""
    terms = question_terms(text)
    hinted = _hinted_keys(text)
    if not terms and not hinted:
        return ()
    scored = []
    for i, (k, v) in enumerate(attrs):
        kl, vl = _folded(k), _folded(v)
        sc = sum(2.0 if t in kl else 1.0 if t in vl else 0.0 for t in terms)
        sc += 2.0 if any(f in k for f in hinted) else 0.0
        if sc >= 2.0:
            scored.append((-sc, i, k, v))
    return tuple((k, v) for _, _, k, v in sorted(scored)[:limit])


def also_answer(intent: str, ctx: Ctx, said: str = "") -> str:
    """What else the message plainly asks about the product it names, when the chosen
    intent's composer does not say it: the stock, the price or the ship window, one short
    line each. Why: a viewer asking the third time whether the rice is in stock is a
    complaint *and* a stock question; the handoff is not an answer, the number is. Only for
    products the viewer named (now or earlier), never the product on screen by default;
    ``said``: the reply so far (the shipping policy is not said twice)."""
    zh = _zh(ctx)
    extra: list[str] = []
    pol = ctx.kb.policies.get("shipping")
    if intent in _ALSO_FEE and pol and _SHIP_FEE_Q.search(ctx.text) and pol not in said:
        extra.append(pol if zh else f"shipping policy: {pol}")  # what a courier or fee costs
    prods = ctx.slots.products if ctx.slots.product_from in ("text", "history") else []
    if not prods and intent in _ALSO_ATTR and _ASKS.search(ctx.text):
        prods = _topic_products(ctx)
    if len(prods) > 2:
        prods = []
    if intent in _ALSO_ATTR:
        for p in prods:
            items = asked_attributes(ctx, p)
            if items:
                extra.append(f"{p.name}：" + "；".join(f"{k}：{v}" for k, v in items) if zh else
                             f"{p.display_name('en')} - " + "; ".join(f"{KEY_EN.get(k, k)} ({k}): {v}" for k, v in items))
    if intent in _ALSO_STOCK and ctx.cues.get("stock", 0.0) >= 2.0:
        for p in prods:
            extra.append(f"{p.name}目前库存{p.stock}件" if zh else f"{p.display_name('en')} in stock: {p.stock}")
    if intent in _ALSO_PRICE and (_PRICE_Q.search(ctx.text) or _BARE_HOW_MUCH.search(ctx.text)):
        extra += [price_line(p, zh, ctx.slots.size) for p in prods]
    if intent in _ALSO_SHIP and ctx.cues.get("logistics", 0.0) >= 2.0 and _SHIP_Q.search(ctx.text):
        for p in prods:
            if p.ships_within_hours:
                extra.append(f"{p.name}付款后{p.ships_within_hours}小时内发货" if zh else
                             f"the {p.display_name('en')} ships within a {p.ships_within_hours}-hour window")
    if intent in _ALSO_SIZE and (ctx.cues.get("size_advice", 0.0) >= 2.0 or ctx.slots.body.height_cm is not None
                                 or ctx.slots.body.weight_kg is not None):
        for p in prods:
            rec = recommend_size(p, ctx.slots.body)
            picks = [rec[0]] if rec else [] if p.size_chart else variants.pick(
                ctx.text, p, _advice_items(p) or _size_attr_items(p), ctx.slots.size)
            if picks and not any(f"选 {x}" in said or f"pick: {x}" in said for x in picks):
                extra.append(f"{p.name}建议选 {' 或 '.join(picks)}" if zh else
                             f"for the {p.display_name('en')} we'd pick: {' or '.join(picks)}")
    if not extra and intent in _ALSO_PROMO and ctx.cues.get("price_promo", 0.0) >= 2.0 \
            and _PROMO_Q.search(ctx.text) and not _PRICE_Q.search(ctx.text):
        promo = price_promo(ctx)  # a gift or coupon asked again, angrily: what is left, the code
        return promo if zh else " " + promo
    if not extra:
        return ""
    return ("；".join(extra) + "。") if zh else (" " + "; ".join(extra) + ".")


def compose(intent: str, ctx: Ctx) -> str:
    text = COMPOSERS[intent](ctx)
    text += also_answer(intent, ctx, text)
    if ctx.escalate and intent != "human_request":
        text = text.rstrip() + (" " if not _zh(ctx) else "") + (HANDOFF_ZH if _zh(ctx) else HANDOFF_EN)
    return text
