"""Intent cue lexicon: weighted Chinese and English patterns written from the intent definitions.

Owns the hand-written evidence for each of the 12 intents. Each entry is a regular
expression over the normalised message and a weight; :mod:`.intent` adds the weights of
the patterns that match to the statistical classifier's scores. Cues are phrased from the
README definitions (what a viewer asking about stock/price/size/... typically writes), not
from any evaluation set.
"""

from __future__ import annotations

import re

from .escalation import HUMAN

_RAW: dict[str, list[tuple[str, float]]] = {
    "greeting": [
        (r"^(?:主播|大家|家人们|宝宝们|宝子们|姐妹们|各位|老铁们|小助手|\w{1,3})?(?:你好|您好|好呀|好啊|晚上好|早上好|早安|下午好|中午好|晚安|哈喽|嗨|hi|hello|hey|嘿)", 2.0),
        (r"晚上好|早上好|下午好|中午好|哈喽|来了来了|来啦|我来了|又来了|报到|打卡|签到|冒泡|第一次来|第一次看|刚进来|进来了|路过|新人|新粉|关注了|支持主播|主播好|大家好|好久不见|捧场", 1.6),
        (r"\b(?:hi|hello|hey|hiya|howdy|yo)\b|good (?:morning|evening|afternoon|night)|greetings|hello from|hi from|watching from|joining from|just joined|first time here|new here|love (?:this|your) (?:stream|channel|show)|what's up|\bsup\b|👋|🙋|❤|💕", 1.6),
    ],
    "product_info": [
        (r"面料|材质|材料|成分|配料|配方|含量|含绒|充绒|绒子|鸭绒|鹅绒|产地|哪里产|哪产|哪里生产|哪里发的货|保质期|生产日期|规格|参数|重量|多重|克重|功率|瓦数|续航|电池|充电|防水|颜色|几个色|什么色|色系|质地|弹力|弹性|厚不厚|厚吗|薄吗|多厚|透气|保暖|暖和|起球|掉色|掉毛|褪色吗|缩水吗|会缩水|辣不辣|辣吗|多辣|甜不甜|甜吗|口味|口感|味道|好吃吗|咸吗|香味|气味|适合.{0,4}(?:肤|皮|发|人|年龄|季节)|干皮|油皮|混油|敏感肌|孕妇|儿童能|老人能|怎么用|使用方法|用法|怎么洗|洗涤|机洗|手洗|干洗|功能|效果|有用吗|好用吗|正品|真的假的|正不正|牌子|品牌|尺寸多大|多大的|多长|多宽|长度|容量|毫升|大小|什么料|纯棉|是棉|是不是棉|羊毛|真皮|加绒|有绒|里面是|含糖|无糖|低糖|添加剂|防腐剂|过敏原|散装|独立包装|一袋多少|几袋|几片|多少片|版型|宽松|修身|显瘦|长款|短款|温度|几档|多少度|防晒|spf|持妆|遮瑕|控油|保湿|补水|噪音|声音大|震动|刷头|配件|附赠什么|包装|盒子|区别|有什么不同|哪个好|推荐哪|安全吗|有毒|甲醛|认证", 2.0),
        (r"made of|material|fabric|cotton|wool|polyester|ingredient|contain|allergen|spicy|sweet|salty|taste|flavou?r|shelf life|expir|best before|origin|where (?:is|are) (?:it|they|the \w+(?: \w+)?) (?:made|from|produced)|made in|made where|waterproof|water-?resistant|warm|thick|thin|stretch|colou?rs?|shades?|texture|matte|finish|how big|dimension|length|width|weigh(?:t)? of|how heavy|battery|charge|wattage|power|watts|temperature|heat settings?|features?|specs?|specification|difference|compare|which is better|genuine|authentic|real (?:leather|down|wool)|brand|lining|fleece-?lined|breathable|pill|shed|fade|shrink|wash|machine wash|dry clean|how (?:do|to) (?:i )?use|suitable for|good for|safe for|sensitive skin|oily skin|dry skin|vegan|sugar|gluten|halal|kosher|pregnan|\bspf\b|long-?lasting|coverage|fragrance|scent|noise|loud|vibrat|brush heads?|accessor|what'?s in|is (?:it|the \w+) (?:cotton|wool|real|spicy|sweet|waterproof|warm|thick|soft)|does (?:it|the \w+) (?:have|come with|contain|stretch|shrink|fade)|how (?:long|many) (?:does|is|are|pieces|bags|packs)|how much (?:down|filling)|down fill|fill power", 2.0),
    ],
    "size_advice": [
        (r"哪个码|什么码|几码|多大码|啥码|选码|码数|尺码|选多大|穿多大|穿什么码|穿哪个|拿什么码|拿几码|拍什么码|拍几码|拍哪个码|要什么码|买什么码|买几码|买多大|大一码|小一码|偏大|偏小|正码|合身|能穿吗|穿得下|能穿下|适合我吗|我适合|选哪个|选哪款|选几号|多大号|什么号|几号的|哪个尺寸|什么尺寸|选哪个尺寸|头发.{0,10}(?:选|用|哪|多大|几)|(?:短发|长发|中长发|发长).{0,8}(?:选|用|哪|多大|几|合适)|(?:25|28|32|38)\s*mm?还是|色号.{0,6}(?:适合|选)|(?:黄皮|白皮|黑皮|肤色).{0,8}(?:选|哪|适合)", 2.2),
        (r"which size|what size|size (?:should|would|do|for)|sizing|size up|size down|runs? (?:small|large|big)|true to size|fit me|will (?:it|they|this) fit|would (?:it|they) fit|fits? (?:me|him|her)|too (?:big|small|tight|loose)|i'?m \d|he'?s \d|she'?s \d|\bi am \d|weigh \d|\d+ ?(?:kg|lbs?|cm)|\d'\d|which (?:one|barrel|shade|width|length) (?:should|for|suits|would)|(?:short|long|medium|shoulder[- ]length) hair|which shade (?:suits|for|should)|for my (?:hair|skin tone)", 2.2),
    ],
    "stock": [
        (r"还有吗|还有没有|有没有货|有货吗|有货没|还有货|现货|没货|缺货|断货|库存|还剩|剩几|剩多少|剩下多少|还有多少|还有几|卖完|卖光|售罄|抢完|抢光|补货|补不补|上货|还能买|还能拍|能拍吗|拍不了|拍不到|抢不到|下架|几件了|多少件|有\w{0,3}码吗|码还有|色还有|还有\w{0,4}(?:码|色|号)吗?|有(?:没有)?\w{0,4}(?:码|色|号)的?吗|有木有货|还有不|有没有$|能抢到|抢得到|还能抢", 2.0),
        (r"in stock|out of stock|sold out|still available|available|any left|still (?:have|got)|how many (?:are |is )?(?:left|remaining|in stock)|\bleft\b|restock|back in stock|run out|ran out|gone already|can i still (?:buy|get|order)|do you (?:still )?have|have any more|inventory|how many (?:pieces|units|do you have)|\bstock\b", 2.0),
    ],
    "price_promo": [
        (r"多少钱|价格|价钱|几块|几元|多少米|什么价|啥价|优惠|折扣|打折|几折|便宜|满减|满\d+减|减\d+|立减|券|口令|红包|送什么|赠品|赠送|送的|送吗|送不送|送啥|有送|名额|前\d+名|前\d+单|前\d+个|福利|活动|秒杀|第二件|第二条|第二盒|第二瓶|半价|凑单|跨品|一起拍|一起买|两件|套装价|组合|搭配.{0,3}优惠|到手|原价|划算|降价|涨价|贵|值不值|值得买|性价比|抽奖|买一送|买\w送|再送|送帽|送小样|小样|试吃装|领券|领取|怎么领|加购|拍下立减|专属价|直播价|今天什么价|咋卖|怎么卖|多钱|💰", 2.0),
        (r"price|cost|how much|discount|deal|coupon|voucher|promo|code|gift|freebie|free \w+ with|bundle|sale|cheaper|\d+% off|\boff\b|first \d+|quota|offer|special|giveaway|buy one|second (?:one|item|pair)|half price|combo|worth it|expensive|\$|¥|rmb|yuan|points|spend \d+|save", 2.0),
    ],
    "order_change": [
        (r"改地址|修改地址|地址写错|地址填错|地址错|地址改|换地址|换个地址|改收货|收货地址|改电话|改手机|电话写错|电话填错|手机号错|名字写错|收件人|改成|换成|改一下|改下|帮我改|能改吗|可以改吗|改个|拍错|下错|选错|买错|填错|写错|点错|拍重|拍多|多拍|少拍|拍了两|重复下单|重复拍|取消订单|取消一下|取消掉|取消吧|帮我取消|能取消|可以取消|撤销订单|撤单|不想要了|不要了|合并订单|合并发货|加一件|再加|备注|修改订单|改订单|订单.{0,6}改|换颜色|换个颜色|换尺码|换个码|改码|改颜色|改色", 2.0),
        (r"change (?:my|the) (?:address|size|colou?r|order|phone|shipping|delivery|name)|wrong (?:address|size|colou?r|item|phone|one)|cancel|modify|update (?:my|the) (?:address|order|phone)|ordered (?:the )?wrong|ordered twice|ordered two|double ordered|switch (?:to|it|my)|swap (?:to|it for)|add (?:to|another|one more)|combine|instead of|mistake|typo|edit (?:my|the) order|change it to", 2.0),
    ],
    "logistics": [
        (r"发货|几号发|什么时候发|啥时候发|多久发|几天发|发出|发走|快递|物流|单号|运单|到哪了|到哪里了|到哪儿|什么时候到|啥时候到|几天到|多久到|几天能到|能到吗|送到|配送|包邮|运费|邮费|顺丰|中通|韵达|圆通|申通|京东|极兔|ems|邮政|偏远|新疆|西藏|青海|内蒙|海南|港澳|香港|澳门|台湾|海外|国外|发什么|揽收|派送|派件|没收到|还没到|还没收到|收不到|没动静|不动了|加急|催|发了吗|发了没|预售|现货吗|寄|送货|驿站|丢件|丢了|签收", 2.0),
        (r"ship|shipping|deliver|delivery|courier|tracking|track (?:my|the)|parcel|package|arrive|dispatch|postage|sf express|dhl|fedex|ups\b|ems\b|when will (?:it|i|my|they)|where is my|how long (?:to|until|does it take to) (?:get|arrive|come|ship|deliver)|haven'?t (?:received|got)|not (?:arrived|received)|still (?:hasn'?t|not) (?:arrived|come)|send (?:it|to)|how soon|how fast|when (?:can|will|do) (?:i|we) (?:get|receive)|get it by|sent out|overseas|abroad|international|singapore|malaysia|hong kong|taiwan|usa|uk\b|canada|australia|free shipping|shipping fee|delivery fee|lost", 2.0),
    ],
    "payment": [
        (r"付款|支付|付钱|付不了|付不上|微信|支付宝|银行卡|信用卡|储蓄卡|花呗|分期|白条|免息|货到付款|到付|发票|开票|普票|专票|抬头|税号|报销|扣款|扣了|扣钱|扣两次|扣了两次|重复扣|多扣|支付失败|付款失败|付不成功|没付成功|余额|付了钱|付过了|已付款.{0,6}(?:显示|没|未)|待付款|收据|对公|转账|paypal|apple pay|\bpay\b", 2.0),
        (r"payment|pay (?:with|by|in|via|later|on delivery)|paypal|credit card|debit card|visa|mastercard|installments?|instalments?|invoice|receipt|tax (?:id|number)|vat|fapiao|charged twice|double charged|charged (?:me|two)|extra charge|checkout|payment (?:failed|error|declined)|card (?:declined|rejected)|cash on delivery|\bcod\b|alipay|wechat pay|bank transfer|can i pay|how (?:do|can) i pay|paid but", 2.0),
    ],
    "return_refund": [
        (r"退货|退款|退钱|退了|退回|退掉|退吗|能退|可以退|想退|要退|申请退|怎么退|退不退|退换|换货|换一件|换个新|换新|调换|无理由|七天|7天|售后|维修|保修|修一下|修吗|能修|返修|退运费|运费险|寄回|退差|退一件|退一个|全额退|部分退|退到哪|原路|到账", 2.0),
        (r"refund|return|exchange|send (?:it|them) back|ship (?:it|them) back|swap (?:it )?for (?:a|another)|repair|warranty|guarantee|replace(?:ment)?|money back|get my money|return policy|restocking", 2.0),
    ],
    "complaint": [
        (r"质量差|质量太差|质量不好|质量很差|质量有问题|质量问题|做工差|做工|线头|破洞|开线|脱线|开胶|掉色了|起球了|缩水了|缩水|褪色|色差|和图片不|跟图片不|和直播|跟直播|跟主播|和主播说的|不一样|货不对板|不符|太慢|这么慢|好慢|怎么还没|还不发|还没发|等了|好几天|一周了|半个月|失望|不满意|不满|差劲|太差|很差|好差|真差|服务差|服务太差|态度差|态度|没人回|不回复|不回消息|不理人|没人理|敷衍|坏了|坏掉|不能用|用不了|没法用|不好用|难吃|难用|难看|假货|是假的|虚假|夸大|上当|后悔|吐槽|槽点|不值|太失望|闹心|烦|无语|服了|醉了|过期|漏了|碎了|压坏|少发|漏发|发错|少了|缺了|不新鲜|有异味|臭|发霉|质量|比想象|比预期|没想象|没有想象|不如(?:直播|图片|描述)|和想象", 2.0),
        (r"complain|disappoint|poor quality|bad quality|low quality|cheap(?:ly)? made|quality is|broke|broken|defect|damaged|faded|shrank|shrunk|ripped|torn|hole|stain|smell|doesn'?t work|not working|stopped working|dead on arrival|not as described|misleading|false advertising|\bfake\b|so slow|too slow|still waiting|nobody (?:replies|answers|responded)|no (?:reply|response)|ignored|rude|worst|terrible|awful|horrible|unhappy|not happy|upset|wrong item|missing|expired|stale|melted|leak|cracked|unacceptable|ridiculous|useless|waste of money|regret|looks nothing like|different from (?:the|what)|than (?:i )?expected|than it looked|not what i expected|not (?:as|so) good", 2.0),
    ],
    "human_request": [],
    "other": [
        (r"歌|音乐|bgm|背景|主播(?:是)?(?:哪里人|多大|几岁|多高|多重|结婚|单身|男朋友|女朋友|老家|本人)|(?:主播|你)(?:的|身上(?:那件|的)?)?(?:耳环|项链|发型|衣服|口红|头发|美甲|眼镜|手表|背景|桌子)|直播(?:到|几点)|几点下播|下播|明天(?:还)?播|几点播|什么时候(?:开)?播|每天都播|天气|吃饭了吗|吃了吗|好漂亮|好帅|好美|好可爱|哈哈|笑死|加油|辛苦了|在哪(?:里)?直播|哪个城市|哪里直播|怎么关注|粉丝团|灯牌|点赞|抖音号|微信号|加微信|加个微信|私聊|小号|录屏|回放|几号来|下次", 1.6),
        (r"song|music|bgm|background|where are you (?:streaming|from|located|based)|what city|how old|weather|lol|haha|your (?:earrings?|necklace|hair|outfit|nails|glasses|makeup|dress)|what time (?:does|do|is) (?:the )?(?:stream|live|show)|stream (?:end|tomorrow|again)|next (?:stream|live)|when do you (?:go live|stream)|are you (?:a bot|real|married|single)|follow|subscribe|replay|recording|instagram|tiktok|youtube|social media", 1.6),
    ],
}

CUES: dict[str, list[tuple[re.Pattern[str], float]]] = {
    k: [(re.compile(p), w) for p, w in v] for k, v in _RAW.items()
}
CUES["human_request"] = [(HUMAN, 4.0)]


def cue_scores(text: str) -> dict[str, float]:
    """Sum of matched cue weights per intent, counting each pattern once."""
    out: dict[str, float] = {}
    for intent, pats in CUES.items():
        s = 0.0
        for pat, w in pats:
            if pat.search(text) is None:  # most patterns miss: one C scan, no iterator
                continue
            hits = {m.group(0) for m in pat.finditer(text) if m.group(0)}
            if hits:
                s += w * (1.0 + 0.35 * min(len(hits) - 1, 3))
        if s:
            out[intent] = s
    return out
