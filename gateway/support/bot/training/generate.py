"""Generate the intent-classifier training utterances from our own templates.

Run ``python -m gateway.support.bot.training.generate`` to rewrite
``gateway/support/bot/data/utterances.tsv`` (one ``intent<TAB>text`` per line). Every
template below was written for this project from the intent definitions in the bot README:
product nouns, sizes and numbers are filled in combinatorially, with a fixed seed so the
file is reproducible. Nothing here comes from an evaluation set.
"""

from __future__ import annotations

import random
from pathlib import Path

ZH_P = ["卫衣", "羽绒服", "马甲", "牛仔裤", "休闲裤", "裤子", "外套", "冲锋衣", "T恤", "衬衫", "毛衣", "连衣裙",
        "围巾", "帽子", "袜子", "鞋子", "运动鞋", "瑜伽裤", "坚果", "牛肉干", "饼干", "茶叶", "蜂蜜", "酥糖",
        "口红", "粉底液", "面膜", "防晒霜", "精华", "面霜", "卷发棒", "吹风机", "电动牙刷", "保温杯", "帐篷",
        "登山杖", "背包", "这个", "这款", "刚才那个", "1号链接", "3号链接", "这件", "那条裤子", "这个颜色"]
EN_P = ["hoodie", "jacket", "vest", "jeans", "pants", "coat", "t-shirt", "sweater", "dress", "scarf", "hat",
        "shoes", "sneakers", "leggings", "nuts", "beef jerky", "cookies", "tea", "honey", "lipstick",
        "foundation", "face mask", "sunscreen", "serum", "curling wand", "hair dryer", "toothbrush",
        "water bottle", "tent", "backpack", "this one", "the blue one", "item 2", "the black one"]
SIZES = ["S", "M", "L", "XL", "XXL", "均码", "28", "29", "大号", "小号"]
EN_SIZES = ["S", "M", "L", "XL", "XXL", "medium", "large", "small", "size 28"]
COLORS = ["黑色", "白色", "蓝色", "灰色", "卡其", "粉色", "燕麦色", "红色"]
EN_COLORS = ["black", "white", "blue", "grey", "pink", "beige", "red", "green"]

T: dict[str, list[str]] = {
    "greeting": [
        "主播晚上好", "主播好呀", "大家好", "来了来了", "我来啦", "打卡打卡", "报到～", "第一次来直播间", "刚进来 主播好",
        "宝宝们晚上好", "早上好呀主播", "下午好 又来看你了", "哈喽哈喽", "嗨 主播", "新粉报到", "关注了 主播好",
        "好久没来了 主播好", "姐妹们好", "老铁们晚上好", "冒个泡", "来捧场了", "支持主播 晚上好", "你好", "您好",
        "主播中午好 吃饭了没", "从北京来的 大家好", "又是准时来的一天", "签到", "来啦来啦 今天上什么好东西",
        "hi", "hello", "hey there", "hi everyone", "hello from Malaysia", "hi from Toronto 👋", "good evening!",
        "good morning from London", "just joined, hi all", "first time here, hello", "hey host!", "hiya",
        "hello hello", "love this stream, hi", "greetings from Sydney", "hi guys, I'm back", "evening everyone",
        "👋👋", "yo what's up", "new here 🙋", "hello from Singapore", "hi again",
    ],
    "product_info": [
        "{p}是什么面料", "{p}什么材质的", "{p}是纯棉的吗", "{p}含棉量多少", "{p}厚不厚", "{p}冬天穿冷不冷",
        "{p}会起球吗", "{p}会掉色吗", "{p}洗了会缩水吗", "{p}能机洗吗", "{p}产地是哪里", "{p}哪里产的",
        "{p}保质期多久", "{p}是什么配料", "{p}辣不辣", "{p}甜吗", "{p}有几个颜色", "{p}有什么颜色可选",
        "{p}是什么质地", "{p}有弹力吗", "{p}是鸭绒还是鹅绒", "{p}充绒量多少", "{p}含绒量是多少",
        "{p}规格是多少", "{p}一袋多少克", "{p}功率多大", "{p}续航多久", "{p}防水吗", "{p}多少度",
        "{p}有几档温度", "{p}适合干皮吗", "{p}敏感肌能用吗", "{p}孕妇能用吗", "{p}有防晒吗", "{p}持妆多久",
        "{p}是正品吗", "{p}什么牌子", "{p}尺寸多大", "{p}多重", "{p}透气吗", "{p}保暖吗", "{p}版型宽松吗",
        "{p}怎么用", "{p}怎么洗", "{p}和上次那款有什么区别", "{p}里面加绒吗", "{p}有没有异味", "{p}含糖吗",
        "{p}是独立包装吗", "{p}有几个口袋", "{p}充电要多久", "{p}噪音大不大", "{p}是不是真皮", "{p}显瘦吗",
        "{p}会不会透", "{p}有没有添加剂", "这个是什么面料呀", "面料舒服吗", "配料表发一下", "成分安全吗",
        "what is the {pe} made of", "is the {pe} cotton", "is the {pe} waterproof", "how warm is the {pe}",
        "does the {pe} shrink after washing", "what colours does the {pe} come in", "where is the {pe} made",
        "what's the shelf life of the {pe}", "is the {pe} spicy", "ingredients of the {pe}?",
        "is the {pe} good for sensitive skin", "how long does the {pe} battery last", "what's the wattage",
        "does the {pe} have a lining", "is the {pe} thick", "how heavy is the {pe}", "what's the spf",
        "is it real down", "how much down fill", "can I machine wash the {pe}", "does the {pe} fade",
        "what's the texture like", "is it matte or glossy", "how many pieces in a pack", "does it come with accessories",
        "what temperature settings does it have", "is it genuine", "what brand is it", "is it stretchy",
    ],
    "size_advice": [
        "{h} {w}斤穿{p}哪个码", "{h}cm {wk}kg 选什么码", "身高{h}体重{w}斤 {p}拿几码", "{h}/{w}斤 穿多大",
        "我{h} {wk}公斤 {p}穿什么码", "1米{hd} {w}斤 {p}买多大", "{p}{h} {w}斤选M还是L", "老公{h} {wk}kg穿几码",
        "男朋友{h}cm {w}斤 {p}拍哪个码", "{h}的个子{w}斤 合适什么码", "我{w}斤 {p}能穿S吗", "{p}偏大还是偏小",
        "{p}尺码正吗", "{p}怎么选码", "平时穿M {p}拿什么码", "腰围二尺一 穿几码", "我比较胖 {p}选哪个码",
        "{p}码数标准吗", "胯宽选大一码吗", "小个子穿{p}会不会太长", "{h}能穿{p}吗 会不会短",
        "头发到锁骨 卷发棒选多大的", "长发过肩用多大号的卷发棒", "短发选哪个尺寸", "我是黄皮 选哪个色号",
        "中长发用25还是32", "肤色偏黑选哪个色号", "{h} {w} 穿哪个码", "{hd2}米{hd} 一百斤选几码",
        "I'm {h}cm and {wk}kg, which size {pe}", "what size should I get, {h} cm {wk} kg",
        "boyfriend is {h}cm {wk}kg, what size {pe}", "I'm 5'{inch} and {lb} lbs, which size",
        "which size fits me, I'm {h} tall", "does the {pe} run small", "is the {pe} true to size",
        "should I size up in the {pe}", "I usually wear M, what size in this {pe}", "my husband is {h}cm, what size",
        "which barrel for shoulder length hair", "I have long hair, which size wand", "will L fit me at {wk}kg",
        "what size for {h}/{wk}", "which shade suits fair skin",
    ],
    "stock": [
        "{p}还有吗", "{p}还有货吗", "{p}还剩几件", "{p}还有多少", "{p}卖完了吗", "{p}是不是没货了", "{p}有现货吗",
        "{s}码现在还有吗", "{p}{s}码还有吗", "{c}还有吗", "{p}{c}还有没有", "{p}什么时候补货", "{p}还能拍吗",
        "{p}断货了吗", "{p}库存还有多少", "{p}怎么拍不了了", "{p}下架了吗", "还有货吗", "还剩多少件",
        "{s}码没了吗", "{p}还能买到吗", "{p}售罄了吗", "{p}会补货吗", "还有{s}码的吗", "有{c}的吗",
        "{p}抢完了吗", "{p}剩的多吗", "那{p}呢 还有吗", "那它现在还有库存吗", "{p}还有{s}的吗",
        "is the {pe} still in stock", "any {pe} left", "is the {pe} sold out", "how many {pe} are left",
        "do you still have the {pe} in {es}", "is {ec} available", "will the {pe} be restocked",
        "can I still buy the {pe}", "is {es} still available", "out of stock already?", "how many remain",
        "do you have the {pe} in {ec}", "still available?", "any {es} left in the {pe}",
    ],
    "price_promo": [
        "{p}多少钱", "{p}现在什么价", "{p}有优惠吗", "{p}打几折", "{p}到手多少", "{p}原价多少", "{p}能便宜点吗",
        "前100名送的还有名额吗", "送的{g}还有吗", "{p}送什么", "有赠品吗", "赠品还有吗", "还有名额吗",
        "券码是什么", "优惠券在哪领", "有没有优惠券", "满减怎么算", "满多少减多少", "可以凑单吗", "跨品能凑单吗",
        "两件一起买优惠吗", "{p}和{p2}一起拍多少钱", "第二件半价吗", "套装价多少", "今天直播价多少",
        "有什么活动", "福利还有吗", "秒杀什么时候开始", "现在下单送{g}吗", "口令是什么", "怎么领券",
        "还有没有前50单的赠品", "{p}比昨天便宜吗", "值不值得买", "买两个有折扣吗", "送的东西送完了吗",
        "how much is the {pe}", "what's the price", "any discount on the {pe}", "which coupon code can I use",
        "is the free gift still available", "are there any free gifts left", "how many gifts are left",
        "is there a bundle deal", "any deals if I buy two", "what's the promo today", "do I get a gift with the {pe}",
        "is the first 100 giveaway still going", "how much with the coupon", "what's the original price",
        "is there a voucher", "buy one get one?", "how much off", "is it cheaper if I buy both",
    ],
    "order_change": [
        "地址写错了能改吗", "帮我改一下收货地址", "拍错尺码了 帮我改成{s}", "下错颜色了 想换成{c}", "订单能取消吗",
        "帮我取消订单", "不想要了 取消吧", "拍重复了 取消一单", "多拍了一件 帮我取消", "电话号码填错了",
        "收件人名字写错了", "还没发货能改地址吗", "能帮我改成{c}吗", "{p}拍成{s}了 想改{s2}", "能合并订单一起发吗",
        "再加一件能一起发吗", "刚下单 想换个码", "想改个地址 搬家了", "订单备注一下要{c}", "能修改订单吗",
        "尺码选错了 还没发货", "把{s}改成{s2}", "地址改成公司的", "我刚拍的能取消吗", "点错了 拍了两单",
        "can I change my shipping address", "I put the wrong address", "please cancel my order",
        "can you change my order to size {es}", "I ordered the wrong colour, can I switch to {ec}",
        "I ordered twice by mistake", "can I add another item to my order", "update my phone number please",
        "change the size to {es} before it ships", "cancel the {pe} order", "can I modify my order",
        "wrong size ordered, please change it", "can you combine my two orders",
    ],
    "logistics": [
        "{p}几号发货", "{p}什么时候发", "{p}多久能发货", "几天发货", "一般发哪家快递", "可以发顺丰快递吗", "包邮吗",
        "新疆地区也包邮吗", "偏远地区运费多少", "我的快递到哪了", "物流怎么不动了", "单号在哪看", "什么时候能到",
        "几天能到上海", "能发到香港吗", "海外能寄吗", "可以指定快递吗", "发货了吗", "还没发货吗 什么时候发",
        "快递显示签收了但我没收到", "可以加急吗", "预售多久发", "{p}是现货吗 当天发吗", "能送货上门吗",
        "下单三天了还没物流", "快递停在中转站了", "运费谁出", "偏远地区要补运费吗", "从哪里发货", "能发韵达吗",
        "when will the {pe} ship", "how long does shipping take", "do you ship to Singapore", "is shipping free",
        "where is my package", "what courier do you use", "can I get a tracking number", "when will it arrive",
        "how much is shipping to Xinjiang", "has my order shipped yet", "my parcel hasn't moved in days",
        "do you deliver overseas", "can I choose SF express", "how many days to ship the {pe}",
    ],
    "payment": [
        "支持分期付款吗", "可以用花呗吗", "花呗分期免息吗", "支持信用卡吗", "能用微信付款吗", "支付宝可以吗",
        "可以货到付款吗", "能开发票吗", "发票怎么开", "可以开公司抬头吗", "专票能开吗", "付款失败怎么办",
        "付不了款", "扣了两次钱", "钱扣了订单没显示", "支付一直转圈", "能用白条吗", "可以银行转账吗",
        "发票什么时候发", "抬头写错了能重开吗", "怎么付款", "能先付定金吗", "可以对公转账吗",
        "can I pay in installments", "do you accept credit cards", "can I pay with PayPal", "can I pay by alipay",
        "is cash on delivery possible", "can I get an invoice", "do you issue invoices", "I was charged twice",
        "payment failed, what do I do", "my card was declined", "can I pay later", "how do I pay",
        "can I get a receipt for my company", "is wechat pay ok",
    ],
    "return_refund": [
        "穿着不合适可以退吗", "{p}可以退货吗", "怎么申请退货", "退款一般几天能到账", "能换货吗", "{p}大了能换小一码吗",
        "7天无理由吗", "拆封了还能退吗", "退货的运费由谁承担", "有运费险吗", "收到货不喜欢能退吗", "退款怎么还没到",
        "想退掉{p}", "我要退货", "穿了一次能退吗", "{p}坏了能修吗", "保修多久", "质量问题能换新吗",
        "收到的{p}有破洞 我要退", "{p}有线头 给我换一件", "退货地址是哪", "退款退到哪里", "申请售后",
        "换个颜色可以吗 已经收到了", "吃不完能退吗", "零食拆了能退吗", "退了货钱什么时候回来",
        "can I return the {pe}", "how do I get a refund", "how many days until the refund comes through", "can I exchange it for {es}",
        "it doesn't fit, can I send it back", "what's your return policy", "I want my money back",
        "the {pe} arrived broken, I want a replacement", "is there a warranty", "can it be repaired",
        "do I pay return shipping", "I'd like to return this",
    ],
    "complaint": [
        "{p}质量太差了", "{p}一洗就缩水", "{p}掉色掉得厉害", "{p}起球了 才穿两次", "{p}有色差 和直播不一样",
        "发货太慢了", "等了一周还没发货", "客服怎么不回消息", "服务态度太差", "有点失望", "不太满意",
        "{p}做工很粗糙", "{p}线头好多", "{p}有异味", "收到的{p}是坏的", "{p}少发了一件", "发错货了",
        "{p}和描述不符", "感觉被骗了 质量一般", "{p}太难吃了", "{p}用了两天就坏了", "说好的赠品没收到",
        "这质量对不起这个价格", "包装破了 东西压坏了", "买了很后悔", "{p}过期了", "主播说的和实际不一样",
        "什么垃圾 {p}一洗就坏", "骗子 虚假宣传", "再不发货我就投诉", "我要给差评", "太离谱了 服务差到极点",
        "{p}穿了起疹子", "吃了{p}拉肚子", "{p}充电发烫冒烟", "用了{p}脸过敏了", "赔我钱",
        "the {pe} shrank after one wash", "the quality is poor", "the {pe} is not as described", "very disappointed",
        "shipping is so slow", "nobody replies to my messages", "the {pe} broke after two days",
        "colour is totally different from the stream", "received the wrong item", "the {pe} smells weird",
        "this is a scam", "worst service ever", "I'll leave a bad review", "I got a rash from the {pe}",
        "the {pe} overheated", "I want compensation", "not happy with the {pe}", "a bit disappointed",
    ],
    "human_request": [
        "帮我转一下人工", "人工客服", "我要找人工", "有没有真人", "能打电话吗", "客服电话多少", "可以视频吗", "能连麦吗",
        "想和主播连麦", "找你们负责人", "叫个真人来", "语音聊一下", "给我打个电话", "机器人别回了 找人",
        "人工", "人工在吗", "能视频看看实物吗", "我想跟客服通话", "转接人工客服", "不想跟机器人说",
        "can I talk to a real person", "human please", "I want to speak to an agent", "can you call me",
        "video call please", "connect me to a human", "is there a phone number", "let me talk to your manager",
        "I need a real human", "can we do a voice call", "get me a person", "not a bot please",
    ],
    "other": [
        "现在放的背景音乐叫啥", "这首歌叫什么", "主播是哪里人", "主播多高", "主播今天的耳环好看", "直播到几点",
        "明天还播吗", "几点下播", "主播在哪个城市直播", "主播结婚了吗", "今天天气好冷", "哈哈哈哈",
        "主播好漂亮", "主播辛苦了", "怎么加粉丝团", "有回放吗", "主播口红什么色号好看", "你们公司在哪",
        "主播吃饭了吗", "今天好多人", "主播的发型好好看", "加油加油", "下次播什么", "主播是机器人吗",
        "点赞点赞", "主播会唱歌吗", "你们直播间几个人", "刚才抽奖谁中了", "灯牌怎么点",
        "what song is this", "where are you streaming from", "how old are you", "what time does the stream end",
        "will you stream tomorrow", "love your earrings", "lol", "is the host married", "what's the weather there",
        "do you have instagram", "is there a replay", "what city are you in", "your hair looks great",
    ],
}


def fill(t: str, rng: random.Random) -> str:
    h = rng.choice([150, 155, 158, 160, 162, 165, 168, 170, 172, 175, 178, 180, 183, 185, 188])
    wk = rng.choice([42, 45, 48, 50, 52, 55, 58, 60, 63, 65, 68, 70, 75, 80, 85, 90])
    p, p2 = rng.sample(ZH_P, 2)
    return t.format(
        p=p, p2=p2, pe=rng.choice(EN_P), s=rng.choice(SIZES), s2=rng.choice(SIZES), es=rng.choice(EN_SIZES),
        c=rng.choice(COLORS), ec=rng.choice(EN_COLORS), g=rng.choice(["帽子", "小样", "试吃装", "梳子", "袜子"]),
        h=h, w=wk * 2, wk=wk, hd=rng.choice([5, 6, 7, 8]), hd2="1", inch=rng.choice([2, 4, 6, 8, 10]),
        lb=rng.choice([110, 130, 150, 170, 190]),
    )


PREFIX_ZH = ["", "", "", "请问", "主播", "宝宝", "姐妹", "主播 ", "你好 ", "想问下", "问一下", "家人们 "]
SUFFIX_ZH = ["", "", "", "？", "呀", "啊", "哈", "～", "?", "呢", "！"]
PREFIX_EN = ["", "", "", "hi, ", "quick question: ", "hey ", "sorry, "]
SUFFIX_EN = ["", "", "?", " please", " thanks", "!", " 🙏"]


def generate(per_template: int = 4, seed: int = 42) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out: set[tuple[str, str]] = set()
    for intent, temps in T.items():
        for t in temps:
            n = per_template if "{" in t else 2
            for _ in range(n):
                text = fill(t, rng)
                if any("\u4e00" <= ch <= "\u9fff" for ch in text):
                    text = rng.choice(PREFIX_ZH) + text + rng.choice(SUFFIX_ZH)
                else:
                    text = rng.choice(PREFIX_EN) + text + rng.choice(SUFFIX_EN)
                out.add((intent, text.strip()))
    return sorted(out)


def main() -> None:
    rows = generate()
    path = Path(__file__).resolve().parent.parent / "data" / "utterances.tsv"
    with path.open("w", encoding="utf-8") as f:
        f.write("# intent<TAB>utterance - generated by gateway/support/bot/training/generate.py; do not edit\n")
        for intent, text in rows:
            f.write(f"{intent}\t{text}\n")
    print(f"wrote {len(rows)} utterances to {path}")


if __name__ == "__main__":
    main()
