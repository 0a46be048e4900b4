"""Slot extraction: which product, size, body measurements and order a message mentions.

Owns turning free chat into structured values the answer composer can look up in the room
knowledge: a product (by SKU, link number, a piece of its Chinese name, an English category
word, or an attribute value only that product has), a size/variant token from the products'
own size lists, height in cm and weight in kg (斤 = 0.5 kg, lb, "160 100斤", "175/130斤",
"1米65", "5'6"), hair length for non-chart sizes, and an order id. The product index is
built from the knowledge object and cached by its product names, so live stock changes do
not rebuild it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from ..knowledge import Knowledge, Product
from .lexicon import STOP, ZH_SYNONYMS, lemmas, phrase_zh, zh_for
from .normalize import normalize

# English category words -> Chinese name fragments that a product name may contain.
EN_CATEGORY: dict[str, tuple[str, ...]] = {
    "hoodie": ("卫衣",), "hoody": ("卫衣",), "sweatshirt": ("卫衣",), "pullover": ("卫衣", "套头"),
    "vest": ("马甲", "背心"), "gilet": ("马甲",), "waistcoat": ("马甲",), "puffer": ("羽绒",),
    "down": ("羽绒",), "jeans": ("牛仔裤",), "denim": ("牛仔",), "pants": ("裤",), "trousers": ("裤",),
    "cargo": ("工装",), "joggers": ("裤",), "leggings": ("瑜伽裤", "打底裤", "裤"), "yoga": ("瑜伽",),
    "scarf": ("围巾",), "scarves": ("围巾",), "nuts": ("坚果",), "nut": ("坚果",), "trail": ("坚果",),
    "jerky": ("牛肉干", "肉干"), "beef": ("牛肉",), "candy": ("糖",), "sesame": ("芝麻",),
    "brittle": ("酥糖",), "snack": ("零食",), "snacks": ("零食",),
    "wand": ("卷发棒",), "curler": ("卷发棒",), "curling": ("卷发棒",), "straightener": ("直发",),
    "dryer": ("吹风机",), "hairdryer": ("吹风机",), "lipstick": ("口红", "唇膏"), "lip": ("唇",),
    "foundation": ("粉底",), "mask": ("面膜",), "masks": ("面膜",), "toothbrush": ("牙刷",),
    "tee": ("t恤", "短袖"), "t-shirt": ("t恤", "短袖"), "tshirt": ("t恤",), "shirt": ("衬衫", "t恤"),
    "jacket": ("外套", "夹克", "冲锋衣"), "coat": ("大衣", "外套"), "shell": ("冲锋衣",),
    "raincoat": ("雨衣",), "windbreaker": ("冲锋衣", "风衣"), "fleece": ("抓绒",),
    "shoes": ("鞋",), "shoe": ("鞋",), "sneakers": ("鞋",), "boots": ("靴",), "hiking": ("徒步", "登山"),
    "hat": ("帽",), "beanie": ("帽",), "cap": ("帽",), "gloves": ("手套",), "socks": ("袜",),
    "bag": ("包",), "backpack": ("背包", "双肩包"), "sunscreen": ("防晒",), "spf": ("防晒",),
    "serum": ("精华",), "cream": ("霜",), "moisturizer": ("面霜", "乳"), "lotion": ("乳",),
    "cleanser": ("洁面", "洗面"), "toner": ("爽肤水", "化妆水"), "perfume": ("香水",),
    "shampoo": ("洗发",), "tent": ("帐篷",), "lamp": ("灯",), "lantern": ("灯",), "light": ("灯",),
    "cup": ("杯",), "mug": ("杯",), "bottle": ("壶", "瓶", "杯"), "thermos": ("保温",),
    "flask": ("保温", "壶"), "poles": ("登山杖",), "pole": ("登山杖",), "trekking": ("登山杖",),
    "chair": ("椅",), "sleeping": ("睡袋",), "blanket": ("毯",), "pillow": ("枕",),
    "eyeshadow": ("眼影",), "mascara": ("睫毛",), "blush": ("腮红",), "cushion": ("气垫",),
    "powder": ("粉",), "tea": ("茶",), "coffee": ("咖啡",), "honey": ("蜂蜜",), "dress": ("裙",),
    "skirt": ("裙",), "sweater": ("毛衣", "针织"), "cardigan": ("开衫",), "underwear": ("内衣", "内裤"),
    "bra": ("内衣",), "charger": ("充电",), "earbuds": ("耳机",), "headphones": ("耳机",),
}
_NAME_STOP = {"女款", "男款", "男士", "女士", "情侣", "新款", "同款", "款式", "男女", "女式", "男式",
              "儿童", "加厚", "装的", "每日", "手工", "礼盒", "系列"}
_LINK = re.compile(r"(?:(\d{1,2})\s*号\s*(?:链接|商品|宝贝|产品)?|链接\s*(\d{1,2})|\b(?:link|item|no\.?)\s*#?\s*(\d{1,2})\b)")
_SKU = re.compile(r"(?<![a-z0-9])([a-z]{1,3}\d{2,4})(?![a-z0-9])")
_ORDER = re.compile(r"(?:订单号?|单号|order\s*(?:id|no\.?|number|#)?)\s*[:：#]?\s*([a-z0-9-]{6,})|\b(\d{10,})\b")

# unit words viewers and hosts spell either way: compared in one form when matching names
# and variants ("10公斤" = "10kg", "200克" = "200g", "220×240" = "220x240")
_UNIT_FOLD = [(re.compile(r"(?<=\d)\s*(?:公斤|千克)"), "kg"), (re.compile(r"(?<=\d)\s*克"), "g"),
              (re.compile(r"(?<=\d)\s*毫升"), "ml"), (re.compile(r"(?<=\d)\s*(?:厘米|公分)"), "cm"),
              (re.compile(r"(?<=\d)\s*毫米"), "mm"), (re.compile(r"(?<=\d)\s*[×*]\s*(?=\d)"), "x")]


def fold_units(text: str) -> str:
    """``text`` with unit words in one spelling (公斤/千克 → kg, 克 → g, 毫升 → ml,
    厘米/公分 → cm, 毫米 → mm, 220×240 → 220x240); used on both sides of a match."""
    if not re.search(r"\d", text):
        return text
    for pat, rep in _UNIT_FOLD:
        text = pat.sub(rep, text)
    return text


# characters too common in chat (or in every product name) to name a product on their own
_CHAR_STOP = frozenset("的了吗呢吧啊呀哦哈嘛有没还是不在我你他她它这那个些么什怎多少几和与及或就都也很太更最好"
                       "大小新款色装号码件套只支包盒袋瓶罐箱桶斤克升米寸段条片枚颗粒一二三四五六七八九十百千万"
                       "两上下中高低长短厚薄用能可以会要想买拍送加减满元块钱价全真正品家男女式型通用适合专"
                       "自动带含无防超级快多功能款系列版号白黑红蓝绿黄粉紫灰金银色双单手工进口原切礼盒"
                       "装天然纯加强轻便携式智能新鲜精选特级优质款式官方旗舰店直播间同人生日子月年")
# a fragment made only of a quantity ("10kg", "5斤", "6l") names a pack size, not a product:
# a body weight or a capacity question says the same words
_ALNUM = re.compile(r"[0-9a-z.]").fullmatch
_QUANTITY = re.compile(r"[\d.]+\s*(?:[a-z]{1,3}|斤|克|升|毫升|寸|件|片|只|枚|支|包|袋|罐|盒|瓶|卷|条)?(?:装|/[\u4e00-\u9fffa-z]+)?")


def _is_food(p: Product) -> bool:
    return any(k in p.attributes for k in ("保质期", "配料", "口味", "辣度", "储存")) and not p.size_chart


def _is_clothing(p: Product) -> bool:
    return bool(p.size_chart) or any(k in p.attributes for k in ("面料",)) or re.search(r"衣|裤|裙|衫|马甲|外套", p.name) is not None


def _is_beauty(p: Product) -> bool:
    return any(k in p.attributes for k in ("适合肤质", "质地", "净含量", "防晒", "主要成分"))


# category words that name a group of products rather than one
_GROUPS = [
    (r"零食|吃的|食品|snacks?|food", _is_food),
    (r"衣服|服装|衣物|clothes|clothing|apparel", _is_clothing),
    (r"美妆|化妆品|护肤|makeup|cosmetics|skincare|beauty", _is_beauty),
]


@dataclass
class ProductIndex:
    products: list[Product]
    fragments: list[dict[str, float]]  # per product: Chinese fragment -> score
    en: dict[str, list[int]]  # English word -> product positions
    # variant strings (a size/shade/capacity listed by exactly one product) -> (pattern, product, score)
    variants: list[tuple[re.Pattern, int, float]] = field(default_factory=list)
    # English words looked up in the bilingual lexicon for this catalog, remembered
    lexicon_hits: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def lexicon(self, word: str) -> list[tuple[int, float]]:
        """Products whose Chinese name holds a translation of ``word``, with a weight
        (a one-character fragment such as 锅 or 米 counts for less)."""
        hits = self.lexicon_hits.get(word)
        if hits is None:
            hits = []
            for frag in zh_for(word):
                for i, p in enumerate(self.products):
                    if frag in p.name and all(i != j for j, _ in hits):
                        hits.append((i, 1.0 if len(frag) > 1 else 0.6))
                if any(w == 1.0 for _, w in hits):
                    break  # the best (first) multi-character translation that names something
            if len(self.lexicon_hits) < 4096:
                self.lexicon_hits[word] = hits
        return hits

    @classmethod
    def build(cls, kb: Knowledge) -> ProductIndex:
        frags: list[dict[str, float]] = []
        attr_keys = {k.lower() for p in kb.products for k in p.attributes if len(k) >= 2}
        # names in the form messages are read in (normalised: 七件套 -> 7件套; units folded)
        names = [fold_units(normalize(p.name)) for p in kb.products]
        for name in names:
            d: dict[str, float] = {}
            n = len(name)
            for i in range(n):
                for j in range(i + 2, n + 1):
                    s = name[i:j]
                    if s in _NAME_STOP or re.fullmatch(r"[\d.a-z×*]+", s) and len(s) < 3:
                        continue
                    if s.strip() != s or not s.strip():
                        continue
                    if (i > 0 and _ALNUM(name[i - 1]) and _ALNUM(s[0])) or (
                            j < n and _ALNUM(name[j]) and _ALNUM(s[-1])):
                        continue  # "one" of "iphone15", "5kg" of "2.5kg": not a word of the name
                    score = float(len(s))
                    if j == n or (j == n - 1 and name[-1] in "装"):
                        score += 1.0  # the head noun of a Chinese product name
                    if _QUANTITY.fullmatch(s):
                        score = 0.9  # "10kg", "5斤装": a pack size, weak
                    elif any(k in s and len(s) - len(k) <= 1 for k in attr_keys):
                        score = min(score, 1.0)  # "大容量" ~ the attribute 容量: a property word
                    d[s] = max(d.get(s, 0.0), score)
            if n and re.match(r"[\u4e00-\u9fff]", name[-1]) and name[-1] not in "装g":
                d.setdefault(name[-1], 0.8)  # 裤 / 衣 / 糖: weak, often ambiguous
            frags.append(d)
        # a Latin word of a name that other names share or another product's variants
        # spell ("pro" of "Air Pro" beside a case for "iPhone 15 Pro") names nothing alone
        variant_text = [" ".join(fold_units(normalize(x)) for x in p.sizes) for p in kb.products]
        for i, d in enumerate(frags):
            for s_, sc in list(d.items()):
                if sc > 1.0 and re.fullmatch(r"[a-z][a-z0-9 .+-]*", s_.strip()) and (
                        sum(1 for nm in names if s_ in nm) > 1
                        or any(s_.strip() in vt for j, vt in enumerate(variant_text) if j != i)):
                    d[s_] = 1.0
        for d, name in zip(frags, names, strict=False):
            for a, b in ZH_SYNONYMS:  # 洗面奶 ~ 洁面, 狗粮 ~ 犬粮: the viewer's word for the name's
                if b in name and a not in d:
                    # below a name that says the word itself (项链 of 珍珠项链 beats 锁骨链)
                    shared = any(a in other for other in names if other is not name)
                    d[a] = max(0.85, len(a) - 0.25) if shared else len(a) + 0.5
        # a character of one product's name that no other name has ("虾", "笔", "被"子):
        # viewers name products by one noun; weak, so any longer fragment wins
        char_count: dict[str, int] = {}
        for name in names:
            for ch in set(name):
                char_count[ch] = char_count.get(ch, 0) + 1
        for d, name in zip(frags, names, strict=False):
            for k, ch in enumerate(name):
                # only a character that ends a word of the name (白虾 / 大虾, 中性笔, 冬被): the
                # head noun; 成 of 成犬粮 or 货 of A货冰糯 would read "成分", "有货" as the product
                ends_word = k + 1 == len(name) or not ("\u4e00" <= name[k + 1] <= "\u9fff")
                if (ends_word and char_count[ch] == 1 and "\u4e00" <= ch <= "\u9fff"
                        and ch not in _CHAR_STOP):
                    d[ch] = max(d.get(ch, 0.0), 1.0 if k + 1 == len(name) else 0.9)
        # attribute values and variant names unique to one product are weak aliases
        counts: dict[str, int] = {}
        cand: list[set[str]] = []
        for p in kb.products:
            toks: set[str] = set()
            vals = list(p.attributes.values()) + list(p.sizes)
            for v in vals:
                for t in re.split(r"[/、，,;；\s+()（）#\d%]+", v.lower()):
                    if 2 <= len(t) <= 6 and re.search(r"[\u4e00-\u9fff]", t):
                        toks.add(t)
            cand.append(toks)
            for t in toks:
                counts[t] = counts.get(t, 0) + 1
        for d, toks in zip(frags, cand, strict=False):
            for t in toks:
                if counts[t] == 1 and t not in d:
                    d[t] = 1.5
        en: dict[str, list[int]] = {}
        for i, p in enumerate(kb.products):  # the room's own names for its products win
            for a in p.aliases:
                a = a.lower().strip()
                if a.isascii():
                    for w in re.findall(r"[a-z][a-z-]*", a):
                        if w not in STOP:
                            en.setdefault(w, []).append(i)
                elif len(a) >= 2:
                    frags[i][a] = max(frags[i].get(a, 0.0), len(a) + 1.0)
        for word, zh in EN_CATEGORY.items():
            for i, p in enumerate(kb.products):
                if any(z in p.name.lower() for z in zh):
                    en.setdefault(word, []).append(i)
        return cls(list(kb.products), frags, en, _variant_index(kb))


_COUNTER = r"[件个只片支包盒袋瓶罐箱桶枚颗粒条卷层号码段寸米斤克升抽人]"
# a number the viewer measured ("手指周长52mm", "肩高25") describes them, not a variant
_MEASURED = re.compile(r"(?:周长|围|高|重|宽|长|指|腕|脖子|颈)\s*(?:是|有|约|大概|差不多)?\s*$")
_VSPLIT = re.compile(r"\s*(?:[x×*/+、,，;；()（）]|\s)\s*")


def _variant_keys(size: str) -> list[tuple[str, float]]:
    """Strings that name one variant: the whole size ("200g×10片" → "200gx10片"), its parts
    ("200g"), a shade's number and its name ("#316烂番茄" → "316", "烂番茄"), a measure without
    its unit ("220x240cm" → "220x240")."""
    v = fold_units(normalize(size)).strip()
    keys: list[tuple[str, float]] = [(v, 2.5)]
    nospace = v.replace(" ", "")
    if nospace != v:
        keys.append((nospace, 2.5))
    parts = [x for x in _VSPLIT.split(v) if x]
    if len(parts) > 1:
        keys += [(x, 2.0) for x in parts]
    m = re.fullmatch(r"#?(\d+)([\u4e00-\u9fff].*)", v)
    if m and len(m.group(2)) >= 2 and not re.match(_COUNTER, m.group(2)):  # shade number + shade name
        keys += [(m.group(1), 1.5 if len(m.group(1)) >= 2 else 0.0), (m.group(2), 2.0)]
    m = re.fullmatch(r"([\d.]+(?:[x\-~][\d.]+)+)\s*[a-z]{1,3}", v)
    if m:  # "220x240cm" -> "220x240", "75-80mm" -> "75-80"
        keys.append((m.group(1), 2.0))
    m = re.fullmatch(r"(\d{2,3})\s*(?:mm|cm)", v)
    if m:  # "46mm": a bare "46" is weak (a price or a count says it too)
        keys.append((m.group(1), 0.9))
    return [(k, sc) for k, sc in keys if sc > 0 and len(k) >= 2 and k not in _GENERIC_SIZES]


def _variant_pattern(key: str) -> re.Pattern:
    # "iphone15 pro" is also typed "iphone 15pro": spaces optional between letters and digits
    esc = r"\s*".join(re.escape(t) for t in re.findall(r"[a-z]+|\d+(?:\.\d+)?|[^\sa-z\d]+", key)) \
        if re.search(r"[a-z]", key) and re.search(r"\d", key) else re.escape(key)
    if re.fullmatch(r"[\d.]+", key):  # a bare number: not part of a longer number, not a price/amount
        return re.compile(r"(?<![\d.a-z¥$])" + esc + r"(?![\d.a-z%]|\s*(?:元|块|件|个|斤|天|小时|岁|月|人|kg|g\b|l\b|cm|mm|ml))")
    head = r"(?<![0-9a-z])" if re.match(r"[0-9a-z#]", key) else ""
    tail = r"(?![0-9a-z])" if re.search(r"[0-9a-z]$", key) else r"(?!\d)" if key[:1].isdigit() else ""
    return re.compile(head + esc + tail)


def _variant_index(kb: Knowledge) -> list[tuple[re.Pattern, int, float]]:
    """A variant string listed by exactly one product names that product ("2段", "46mm",
    "#316", "220x240"): keys shared by several products say nothing about which."""
    owners: dict[str, set[int]] = {}
    best: dict[tuple[str, int], float] = {}
    for i, p in enumerate(kb.products):
        for size in p.sizes:
            for k, sc in _variant_keys(size):
                owners.setdefault(k, set()).add(i)
                best[(k, i)] = max(best.get((k, i), 0.0), sc)
    names = [fold_units(normalize(p.name)) for p in kb.products]
    out = []
    for k, who in owners.items():
        if len(who) == 1 and not any(k in nm for j, nm in enumerate(names) if j not in who):
            i = next(iter(who))
            out.append((_variant_pattern(k), i, best[(k, i)]))
    return out


def catalog_key(kb: Knowledge) -> tuple:
    """Everything about the products that slot extraction reads - and nothing it does not
    (stock, prices, promotions change during a stream without changing what a message
    names). Equal keys: every ``extract`` result is the same up to the live objects."""
    return tuple((p.sku, p.name, tuple(p.sizes), tuple(p.attributes.items()), bool(p.size_chart),
                  tuple(p.aliases))
                 for p in kb.products)


_INDEX_CACHE: dict[tuple, ProductIndex] = {}


def product_index(kb: Knowledge) -> ProductIndex:
    key = catalog_key(kb)  # the index reads attributes and sizes too, not only the names
    idx = _INDEX_CACHE.get(key)
    if idx is None:
        if len(_INDEX_CACHE) > 256:
            _INDEX_CACHE.clear()
        idx = _INDEX_CACHE[key] = ProductIndex.build(kb)
    return idx


def find_products(text: str, kb: Knowledge) -> list[Product]:
    """Products the (normalised) text names, best first; ties all returned."""
    return find_products_scored(text, kb)[0]


# how viewers address each other ("宝子们", "家人们"): never a product word, though 宝 ends
# 充电宝 and 家 a 家居 name
_ADDRESS = re.compile(r"宝子们?|家人们|姐妹们|集美们|老铁们?|亲们")


def find_products_scored(text: str, kb: Knowledge) -> tuple[list[Product], float]:
    """:func:`find_products` and how strongly the text names them (the top score: a link
    number or SKU 10+, a whole name part 3+, a word the product's attributes hold ~1.5)."""
    idx = product_index(kb)
    text = _ADDRESS.sub(" ", text)
    # the index may be keyed on names only: map back to the live product objects by sku
    live = {p.sku: p for p in kb.products}
    text = fold_units(text)
    scores = [0.0] * len(idx.products)
    for m in _LINK.finditer(text):
        k = int(next(g for g in m.groups() if g))
        if 1 <= k <= len(idx.products):
            scores[k - 1] += 10
    for m in _SKU.finditer(text):
        for i, p in enumerate(idx.products):
            if p.sku.lower() == m.group(1):
                scores[i] += 10
    for i, frags in enumerate(idx.fragments):
        best = 0.0
        for s, sc in frags.items():
            if sc > best and s in text:
                best = sc
        scores[i] += best
    vbest: dict[int, float] = {}
    for vpat, i, sc in idx.variants:
        if sc > vbest.get(i, 0.0):
            vm = vpat.search(text)
            if vm and not (vm.group(0)[:1].isdigit() and _MEASURED.search(text, 0, vm.start())):
                vbest[i] = sc
    for i, sc in vbest.items():  # alone it names the product; with a name it breaks a tie
        scores[i] = max(scores[i], sc) if scores[i] < 0.8 else scores[i] + min(sc, 1.0)
    words = re.findall(r"[a-z][a-z-]*", text)
    skip = -1
    for k, w in enumerate(words):
        if k == skip:
            continue
        if k + 1 < len(words):  # "power bank", "face wash": a two-word shop noun first
            zh2 = phrase_zh(w + " " + words[k + 1])
            if zh2:
                hits2 = [i for i, p in enumerate(idx.products) if any(z in p.name.lower() for z in zh2)]
                if hits2:
                    for i in hits2:
                        scores[i] += 4.0 / len(hits2) + 0.5
                    skip = k + 1
                    continue
        for key in lemmas(w):
            if key in idx.en:
                hits = idx.en[key]
                for i in hits:
                    scores[i] += 3.0 / len(hits) + 0.5
                break
        else:  # not a shop word the room or our list knows: the bilingual lexicon
            lex = idx.lexicon(w)
            for i, weight in lex:
                scores[i] += (3.0 / len(lex) + 0.5) * weight
    for pat, pred in _GROUPS:
        if re.search(pat, text):
            for i, p in enumerate(idx.products):
                if scores[i] < 1.0 and pred(p):
                    scores[i] = 1.0
    top = max(scores, default=0.0)
    if top < 0.8:
        return [], 0.0
    out = [idx.products[i] for i, s in enumerate(scores) if s >= top - 1e-9]
    return [live.get(p.sku, p) for p in out], top


# ---- body measurements -------------------------------------------------------------------

_H_M = re.compile(r"(?<![\d.])1\s*(?:米|m)\s*(\d{1,2})(?!\s*(?:kg|斤|公斤))")
_H_DOT = re.compile(r"(?<![\d.])(1\.\d{1,2})\s*(?:米|m)(?![a-z])")
_H_CM = re.compile(r"(?<![\d.])(1[4-9]\d|20\d)(?:\.\d)?\s*(?:cm|厘米|公分)")
_H_FT = re.compile(r"(?<![\d.])([4-6])\s*(?:'|ft|feet|foot|尺)\s*(\d{1,2})?\s*(?:\"|''|in|inch|inches)?")
_W_JIN = re.compile(r"(?<![\d.])(\d{2,3}(?:\.\d)?)\s*斤")
_W_KG = re.compile(r"(?<![\d.])(\d{2,3}(?:\.\d)?)\s*(?:kg|公斤|千克|kilos?)")
_W_LB = re.compile(r"(?<![\d.])(\d{2,3}(?:\.\d)?)\s*(?:lbs?|pounds?)")
_BARE = re.compile(r"(?<![\d.a-z#])(\d{2,3}(?:\.\d)?)(?![\d.]|\s*(?:元|块|件|个|号|天|小时|mm|ml|g\b|%|w\b|cm|厘米|公分|斤|kg|公斤|千克|lb|pound|码|岁|年|月|分|秒|片|袋|盒|瓶|米|m\b))")


# small bodies (a baby, a toddler, a dog): a height under 140 cm or a one-digit weight is
# read only when the message is about a body - a body word, or the other measurement -
# since "30cm的锅" and "5kg的米" are products' sizes
_SMALL_H = re.compile(r"(?<![\d.])(\d{2,3})(?:\.\d)?\s*(?:cm|厘米|公分)")
_HEIGHT_WORD = re.compile(r"(?:身高|肩高|背长|个子|高)\s*(?:是|有|约|大概|差不多)?\s*(\d{2,3})(?:\.\d)?(?![\d.]|\s*(?:kg|斤|公斤|mm|元|块))")
_W_SMALL = re.compile(r"(?<![\d.])(\d{1,2}(?:\.\d+)?)\s*(?:(kg|公斤|千克|kilos?)|(斤)|(lbs?|pounds?))(?![a-z])")
_BODY_WORD = re.compile(r"身高|体重|肩高|宝宝|宝贝|孩子|儿子|女儿|小朋友|娃|狗|猫|犬|柯基|泰迪|金毛|腊肠|博美|吉娃娃|"
                        r"baby|toddler|kid|son|daughter|grandson|granddaughter|child|dog|puppy|cat|kitten|\btall\b|weigh")


@dataclass
class Body:
    height_cm: float | None = None
    weight_kg: float | None = None


def body_measurements(text: str) -> Body:
    b = Body()
    t = text
    m = _H_DOT.search(t)
    if m:
        b.height_cm = round(float(m.group(1)) * 100)
    m = m or None
    if b.height_cm is None:
        m2 = _H_M.search(t)
        if m2:
            d = m2.group(1)
            b.height_cm = 100 + (int(d) * 10 if len(d) == 1 else int(d))
    if b.height_cm is None:
        m3 = _H_CM.search(t)
        if m3:
            b.height_cm = float(m3.group(1))
    if b.height_cm is None:
        m4 = _H_FT.search(t)
        if m4 and (m4.group(2) or re.search(r"ft|feet|foot|'", m4.group(0))):
            inches = int(m4.group(1)) * 12 + int(m4.group(2) or 0)
            b.height_cm = round(inches * 2.54)
    m5 = _W_JIN.search(t)
    if m5:
        b.weight_kg = float(m5.group(1)) / 2
    else:
        m6 = _W_KG.search(t)
        if m6:
            b.weight_kg = float(m6.group(1))
        else:
            m7 = _W_LB.search(t)
            if m7:
                b.weight_kg = round(float(m7.group(1)) * 0.4536, 1)
    small_ok = _BODY_WORD.search(t) is not None
    if b.weight_kg is None:
        m8 = _W_SMALL.search(t)
        if m8 and (small_ok or b.height_cm is not None or _SMALL_H.search(t)):
            v = float(m8.group(1))
            b.weight_kg = v / 2 if m8.group(3) else round(v * 0.4536, 1) if m8.group(4) else v
    if b.height_cm is None:
        m9 = _HEIGHT_WORD.search(t)
        if m9 and 10 <= float(m9.group(1)) <= 205:
            b.height_cm = float(m9.group(1))
        else:
            m10 = _SMALL_H.search(t)
            if m10 and 10 <= float(m10.group(1)) < 140 and (small_ok or b.weight_kg is not None):
                b.height_cm = float(m10.group(1))
    # unit-less numbers: "160 100", "175/65", "身高160体重50"
    if b.height_cm is None or b.weight_kg is None:
        bare = [float(x) for x in _BARE.findall(t)]
        for v in bare:
            if b.height_cm is None and 140 <= v <= 205 and (b.weight_kg is not None or len(bare) >= 2
                                                           or re.search(r"身高|高|tall|height|个子", t)):
                b.height_cm = v
            elif b.weight_kg is None and v != b.height_cm and 30 <= v <= 250 and (
                    b.height_cm is not None or re.search(r"体重|重|weigh|胖", t)):
                zh = bool(re.search(r"[\u4e00-\u9fff]", t))
                b.weight_kg = v / 2 if (zh and v >= 90) or v > 150 else v
    return b


# ---- sizes, hair, order id ---------------------------------------------------------------

_GENERIC_SIZES = ("xxxl", "xxl", "3xl", "2xl", "xl", "xs", "s", "m", "l", "均码", "free size", "one size")


@dataclass(frozen=True)
class _SizeToken:
    """One size of a pool with its patterns compiled once (``find_size`` runs per message,
    and per earlier message of the conversation, so building regexes per call was most of
    the bot's time)."""

    size: str
    lower: str
    word: re.Pattern | None  # tokens like "m", "xl", "27", "#02": matched as a whole word
    letter: re.Pattern | None  # a one-letter S/M/L needs a size-ish neighbour
    core: str  # variant names: the name without a leading shade number ("#02 豆沙" -> "豆沙")


@functools.lru_cache(maxsize=512)
def _size_tokens(pool: tuple[str, ...]) -> tuple[_SizeToken, ...]:
    # longest first, so "xxl" wins over "xl" and "l"; equal lengths keep the pool's order
    # (deterministic: a set's order changes with the process's hash seed)
    out = []
    for s in sorted(dict.fromkeys(pool), key=len, reverse=True):
        sl = s.lower()
        if re.fullmatch(r"[0-9a-z#.]+", sl):
            esc = re.escape(sl)
            out.append(_SizeToken(
                s, sl, re.compile(r"(?<![0-9a-z])" + esc + r"(?![0-9a-z])"),
                re.compile(r"(?<![a-z])" + sl + r"(?:\s*(?:码|号|size|的|还|呢|吗|有|能|可以|$|\W))")
                if len(sl) == 1 and sl in "sml" else None,
                ""))
        else:
            out.append(_SizeToken(s, sl, None, None, re.sub(r"^#?\d+", "", sl)))
    return tuple(out)


def find_size(text: str, kb: Knowledge, product: Product | None = None) -> str | None:
    """A size or variant token from the products' size lists that the text mentions: the
    named product's sizes first, then any product's; the longest token wins, then the
    earliest in the product's list."""
    return _find_size(text, tuple(product.sizes) if product else None,
                      tuple(s for p in kb.products for s in p.sizes))


@functools.lru_cache(maxsize=8192)
def _find_size(text: str, own: tuple[str, ...] | None, pool: tuple[str, ...]) -> str | None:
    """:func:`find_size`, a pure function of the text and the size lists, remembered: the
    conversation step asks it again on every reply for the product history supplied."""
    pools = [own] if own is not None else []
    pools.append(pool)
    for pool in pools:
        for t in _size_tokens(pool):
            if t.word is not None:
                if t.word.search(text):
                    if t.letter is not None and not t.letter.search(text):
                        continue
                    return t.size
            elif t.lower in text or (len(t.core) >= 2 and t.core in text):
                return t.size
    return None


def hair_length(text: str) -> str | None:
    if not re.search(r"[\u4e00-\u9fff]", text) and not re.search(r"hair|curl|wave|barrel|wand", text):
        return None  # "medium skin", "long battery": English length words without hair
    if re.search(r"长发|过肩|及腰|到腰|到背|超长|long hair|hair is long|past (?:my )?shoulder|long", text):
        if not re.search(r"不长|not long|不算长", text):
            return "long"
    if re.search(r"短发|锁骨|齐肩|到肩|耳朵|下巴|不长|不算长|短|short|bob|chin|shoulder", text):
        return "short"
    if re.search(r"中长|medium", text):
        return "medium"
    return None


def find_order_id(text: str) -> str | None:
    m = _ORDER.search(text)
    if not m:
        return None
    return next(g for g in m.groups() if g)


@dataclass
class Slots:
    products: list[Product] = field(default_factory=list)
    product_from: str = "none"  # "text" | "history" | "screen" | "none"
    # how strongly the text named them (find_products_scored): a word of a product's
    # attributes names it weakly, and an earlier message that named one outright wins
    strength: float = 0.0
    size: str | None = None
    body: Body = field(default_factory=Body)
    hair: str | None = None
    order_id: str | None = None

    @property
    def product(self) -> Product | None:
        return self.products[0] if len(self.products) == 1 else None

    def as_dict(self) -> dict[str, object]:
        d: dict[str, object] = {}
        if self.products:
            d["sku"] = [p.sku for p in self.products] if len(self.products) > 1 else self.products[0].sku
            d["product_from"] = self.product_from
        if self.size:
            d["size"] = self.size
        if self.body.height_cm is not None:
            d["height_cm"] = self.body.height_cm
        if self.body.weight_kg is not None:
            d["weight_kg"] = self.body.weight_kg
        if self.hair:
            d["hair"] = self.hair
        if self.order_id:
            d["order_id"] = self.order_id
        return d


def extract(text: str, kb: Knowledge) -> Slots:
    """Slots of one normalised message, without looking at history."""
    prods, strength = find_products_scored(text, kb)
    s = Slots(products=prods, product_from="text" if prods else "none", strength=strength)
    s.size = find_size(text, kb, s.product)
    s.body = body_measurements(text)
    s.hair = hair_length(text)
    s.order_id = find_order_id(text)
    return s
