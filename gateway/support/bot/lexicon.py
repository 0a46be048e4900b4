"""English words → Chinese product-name fragments: how "rice" finds 东北五常大米.

Owns the bilingual lookup the product finder (:mod:`.slots`) falls back on when a viewer
names a product in English and the room lists it in Chinese only. Two sources, in order:

1. a short curated list of shop words (``SHOP_WORDS``) for the nouns live rooms sell most,
   where a general dictionary is wrong or silent ("wok", "earbuds", "power bank");
2. the English→Chinese word list shipped inside the ``cedict`` package (about 100,000
   headwords, noun senses only), read once at warm-up; nothing is downloaded.

A room can also name its products itself: ``aliases`` on a product in the knowledge file
(see docs/bot.md) are matched before either source, and an English alias is how an English
reply names the product.
"""

from __future__ import annotations

import csv
import functools
import re
from importlib import resources

SHOP_WORDS: dict[str, tuple[str, ...]] = {
    "wok": ("炒锅", "铁锅", "锅"), "pan": ("锅", "煎锅", "平底锅"), "pot": ("锅", "壶"),
    "skillet": ("煎锅", "平底锅"), "cookware": ("锅",), "knife": ("刀",), "knives": ("刀",),
    "cleaver": ("菜刀",), "blender": ("破壁机", "料理机", "搅拌机"), "juicer": ("榨汁",),
    "fryer": ("空气炸锅", "炸锅"), "cooker": ("电饭煲", "锅"), "kettle": ("水壶", "烧水壶", "壶"),
    "steak": ("牛排",), "steaks": ("牛排",), "shrimp": ("虾",), "prawn": ("虾",), "crab": ("蟹",),
    "rice": ("大米", "米"), "egg": ("蛋",), "eggs": ("蛋",), "fruit": ("果",),
    "earbuds": ("耳机",), "earphones": ("耳机",), "headset": ("耳机",), "powerbank": ("充电宝",),
    "charger": ("充电器", "充电头", "充电"), "cable": ("数据线", "线"), "case": ("壳", "保护套"),
    "watch": ("手表", "表"), "smartwatch": ("手表",), "speaker": ("音箱", "音响"),
    "diaper": ("纸尿裤", "尿不湿"), "diapers": ("纸尿裤", "尿不湿"), "nappy": ("纸尿裤",),
    "formula": ("奶粉",), "stroller": ("推车",), "pram": ("推车",), "wipes": ("湿巾",),
    "bottle": ("奶瓶", "瓶", "壶", "杯"), "litter": ("猫砂",), "kibble": ("粮",), "leash": ("牵引",),
    "harness": ("胸背", "牵引"), "treats": ("零食",), "necklace": ("项链",),
    "ring": ("戒指",), "earrings": ("耳环", "耳钉"), "pendant": ("吊坠",),
    "duvet": ("被", "被子"), "comforter": ("被",), "quilt": ("被",), "sheets": ("床单", "四件套"),
    "towel": ("毛巾",), "towels": ("毛巾",), "curtain": ("窗帘",), "curtains": ("窗帘",),
    "lamp": ("灯",), "salmon": ("三文鱼", "鲑鱼"), "cherry": ("车厘子", "樱桃"),
    "cherries": ("车厘子", "樱桃"), "beef": ("牛肉", "牛"), "lipstick": ("口红", "唇膏"), "serum": ("精华",), "sunscreen": ("防晒",), "mask": ("面膜",),
    "board": ("砧板", "菜板", "板"), "bed": ("床", "窝", "垫"), "chews": ("磨牙", "洁齿", "咬胶"),
    "chew": ("磨牙", "洁齿", "咬胶"), "onesie": ("连体衣", "爬服", "哈衣"), "romper": ("连体衣", "爬服"),
    "pen": ("笔",), "notebook": ("本", "笔记本", "手账"), "journal": ("手账", "本"), "shelf": ("架",),
    "rack": ("架",), "book": ("书",), "mango": ("芒",), "tips": ("耳塞",), "strap": ("表带", "带"),
    "container": ("保鲜盒", "盒"),
    # food, drink and outdoor nouns the dictionary misses or gives another sense first
    # ("oranges" is 猩猩 there, "boots" 擦靴人; a plural finds its singular here)
    "boot": ("靴", "鞋"), "sneaker": ("鞋", "运动鞋"), "slipper": ("拖鞋",), "sandal": ("凉鞋",),
    "date": ("枣",), "jujube": ("枣",), "macadamia": ("夏威夷果", "澳洲坚果"), "almond": ("巴旦木", "杏仁"),
    "cashew": ("腰果",), "walnut": ("核桃",), "pistachio": ("开心果",), "raisin": ("葡萄干",),
    "liquor": ("白酒", "酒"), "baijiu": ("白酒",), "wine": ("葡萄酒", "红酒", "酒"), "whisky": ("威士忌",),
    "beer": ("啤酒",), "sake": ("清酒",), "oolong": ("乌龙",), "jerky": ("肉干", "牛肉干"),
    "orange": ("橙", "柑", "桔"), "tangerine": ("柑", "桔", "橘"), "grapefruit": ("柚",), "pomelo": ("柚",),
    "noodle": ("面", "粉"), "dumpling": ("饺",), "sausage": ("肠",), "tofu": ("豆腐",), "containers": ("保鲜盒", "盒"), "bangle": ("镯",), "bracelet": ("手链", "手镯", "镯"),
}
# two-word shop nouns, looked up before their words ("power bank" is not a kind of bank)
SHOP_PHRASES: dict[str, tuple[str, ...]] = {
    "power bank": ("充电宝", "移动电源"), "face wash": ("洁面", "洗面"), "facial cleanser": ("洁面", "洗面"),
    "cutting board": ("砧板", "菜板"), "chopping board": ("砧板", "菜板"), "pull ups": ("拉拉裤",),
    "pull-ups": ("拉拉裤",), "training pants": ("拉拉裤", "学步裤"), "dog food": ("狗粮", "犬粮"),
    "cat food": ("猫粮",), "cat litter": ("猫砂",), "air fryer": ("空气炸锅", "炸锅"),
    "rice cooker": ("电饭煲", "电饭锅"), "ear tips": ("耳塞",), "phone case": ("手机壳",),
    "knife set": ("刀具", "刀"), "desk lamp": ("台灯",), "dog bed": ("窝", "狗窝"), "cat bed": ("窝", "猫窝"),
    "pet bed": ("窝",), "baby bottle": ("奶瓶",), "baby formula": ("奶粉",), "milk powder": ("奶粉",),
    "wet wipes": ("湿巾",), "gel pen": ("中性笔", "笔"), "gel pens": ("中性笔", "笔"),
    "smart watch": ("手表",), "blackout curtains": ("窗帘",), "lip gloss": ("唇釉",),
}
# Chinese shop words that mean what a product name says another way: (viewer's, name's)
ZH_SYNONYMS: tuple[tuple[str, str], ...] = (
    ("洗面奶", "洁面"), ("尿不湿", "纸尿裤"), ("狗粮", "犬粮"),
    ("充电头", "充电器"), ("数据线", "快充线"), ("锅", "炒锅"), ("铁锅", "炒锅"), ("被子", "被芯"), ("被子", "冬被"),
    ("枕头", "枕"), ("本子", "手账本"), ("本子", "笔记本"), ("项链", "锁骨链"), ("镯子", "手镯"),
)


def phrase_zh(phrase: str) -> tuple[str, ...]:
    """Chinese fragments for a two-word English shop noun ("power bank"), or ()."""
    return SHOP_PHRASES.get(phrase) or SHOP_PHRASES.get(phrase.rstrip("s")) or ()
STOP = frozenset("""a an the this that these those it its is are was be been do does did have has
had i me my we our you your he she they them his her their what which who how when where why
can could will would should may might please pls plz any some more much many still left stock
price size and or but if so for of to in on at by with from about as than too very just also
one ones thing things item items link order buy get got want need like know there here yes no
not ok okay thanks thank hi hello hey""".split())
_POS = re.compile(r"(?:^|(?<=[\s;,.)]))(n|v|vt|vi|adj|adv|a|prep|conj|pron|num|int|abbr)\.")
_CJK = re.compile(r"^[\u4e00-\u9fff]{1,4}$")


@functools.lru_cache(maxsize=1)
def _dictionary() -> dict[str, str]:
    """headword → its raw translation text (parsed per word on demand)."""
    try:
        path = resources.files("cedict") / "csv" / "EnWords.csv"
        with path.open(encoding="utf-8") as fh:
            return {row[0].lower(): row[1] for row in csv.reader(fh) if len(row) >= 2}
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return {}


def load() -> int:
    """Read the word list (warm-up, off the event loop); returns how many headwords."""
    return len(_dictionary())


def _noun_senses(raw: str) -> list[str]:
    """The Chinese words of the noun senses of one dictionary entry."""
    parts = _POS.split(raw)
    # split gives [before, pos, text, pos, text, ...]; an entry without tags is all nouns
    chunks = [raw] if len(parts) == 1 else [parts[i + 1] for i in range(1, len(parts) - 1, 2)
                                            if parts[i] == "n"]
    out: list[str] = []
    for chunk in chunks:
        chunk = re.sub(r"<[^>]*>|\([^)]*\)|（[^）]*）|\[[^\]]*\]", "", chunk)
        for w in re.split(r"[,;，；、\s/]+", chunk):
            if _CJK.match(w) and w not in out:
                out.append(w)
    return out


def lemmas(word: str) -> tuple[str, ...]:
    w = word.lower()
    out = [w]
    if w.endswith("ies") and len(w) > 4:
        out.append(w[:-3] + "y")
    if w.endswith("es") and len(w) > 3:
        out.append(w[:-2])
    if w.endswith("s") and len(w) > 3:
        out.append(w[:-1])
    return tuple(dict.fromkeys(out))


@functools.lru_cache(maxsize=8192)
def zh_for(word: str) -> tuple[str, ...]:
    """Chinese fragments an English word may name, best first; () for stop words."""
    if len(word) < 3 or any(w in STOP for w in lemmas(word)):
        return ()  # "sizes" is "size": a word every question uses, no product's name
    for w in lemmas(word):
        if w in SHOP_WORDS:
            return SHOP_WORDS[w]
    d = _dictionary()
    for w in lemmas(word):
        raw = d.get(w)
        if raw:
            return tuple(_noun_senses(raw)[:8])
    return ()
