"""A synthetic live-stream question stream for the anomaly replay (issue 20 must-show).

``viewer_stream(seed, spike=...)`` returns 5,000 viewer messages over 30 minutes about the
demo room's 8 products, each ``(t, viewer, text)`` with ``t`` in seconds from the start:
popular products asked about more, a realistic mix of questions (stock, price, product,
delivery) and a small steady share of complaints and return requests. With ``spike`` a
burst of complaints about one product is injected (the total stays 5,000). Texts are written
in the room's words and classified by the real bot in the test, so the replay exercises the
bot's decision too. ``SEED`` is the seed the test uses; any seed gives a stream of the same
shape (``python -m tests.radar.stream 1 2 3`` prints the flags each seed raises and a
JSON summary: false flags, how long after the spike's start it was flagged and after its end
cleared; the figures in docs/webhooks.md are seeds 1–20).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SEED = 20
DURATION_S = 30 * 60.0
TOTAL = 5000
SKUS = ("D001", "D002", "D003", "D004", "D005", "D006", "D007", "D008")
NAMES = {"D001": "三合一防水冲锋衣", "D002": "速干弹力徒步裤", "D003": "轻量防滑登山鞋",
         "D004": "316不锈钢保温壶1L", "D005": "户外露营充电营地灯",
         "D006": "清爽户外防晒乳SPF50+", "D007": "保湿修护素颜霜", "D008": "冷萃挂耳咖啡30包"}
POPULARITY = (3.0, 2.0, 1.5, 1.0, 1.0, 1.0, 0.8, 0.7)
# (intent, share, templates): shares sum to 1
MIX = (
    ("stock", 0.30, ("{n}还有货吗", "{n}还有库存吗")),
    ("price_promo", 0.22, ("{n}多少钱", "{n}有优惠吗")),
    ("product_info", 0.22, ("{n}是什么材质的", "{n}怎么用")),
    ("logistics", 0.225, ("{n}什么时候发货",)),
    ("return_refund", 0.02, ("{n}想退货", "{n}怎么申请退款")),
    ("complaint", 0.015, ("{n}质量太差了，我要投诉", "收到的{n}是坏的，太失望了",
                          "{n}用了一次就坏了，什么垃圾")),
)
COMPLAINTS = MIX[-1][2]


@dataclass(frozen=True)
class Spike:
    sku: str = "D003"
    start_s: float = 900.0
    duration_s: float = 240.0
    per_min: float = 12.0

    @property
    def count(self) -> int:
        return int(self.per_min * self.duration_s / 60)


@dataclass(frozen=True)
class Line:
    t: float
    viewer: str
    text: str
    sku: str
    intent: str  # what the generator meant (the bot decides what counts)


def viewer_stream(seed: int = SEED, spike: Spike | None = None) -> list[Line]:
    rnd = random.Random(seed)
    n_base = TOTAL - (spike.count if spike else 0)
    intents = [m[0] for m in MIX]
    shares = [m[1] for m in MIX]
    templates = {m[0]: m[2] for m in MIX}
    out = []
    for _ in range(n_base):
        sku = rnd.choices(SKUS, POPULARITY)[0]
        intent = rnd.choices(intents, shares)[0]
        text = rnd.choice(templates[intent]).format(n=NAMES[sku])
        out.append(Line(rnd.uniform(0, DURATION_S), f"v{rnd.randrange(2000)}", text, sku,
                        intent))
    if spike is not None:
        for i in range(spike.count):
            t = spike.start_s + rnd.uniform(0, spike.duration_s)
            out.append(Line(t, f"s{i}", rnd.choice(COMPLAINTS).format(n=NAMES[spike.sku]),
                            spike.sku, "complaint"))
    out.sort(key=lambda x: x.t)
    return out


if __name__ == "__main__":  # which flags each seed raises; a summary as JSON, last
    import json
    import sys

    from tests.radar.replay import replay

    spike = Spike()
    seeds = [int(a) for a in sys.argv[1:]] or [SEED]
    false, delays, clears = 0, [], []
    for s in seeds:
        quiet = replay(viewer_stream(s))
        spiked = replay(viewer_stream(s, spike))
        hit = [e for e in spiked.raised if (e.sku, e.kind) == (spike.sku, "complaint")]
        false += len(quiet.raised) + len(spiked.raised) - len(hit)
        delays.append(round(hit[0].since - spike.start_s) if hit else None)
        gone = [e for e in spiked.cleared if (e.sku, e.kind) == (spike.sku, "complaint")]
        clears.append(round(gone[0].cleared_at - spike.start_s - spike.duration_s)
                      if gone else None)
        print(s, "quiet:", [(e.sku, e.kind, int(e.since)) for e in quiet.raised],
              "spike:", [(e.sku, e.kind, int(e.since)) for e in spiked.raised])
    print(json.dumps({"seeds": len(seeds), "replays": 2 * len(seeds), "false_flags": false,
                      "flag_delay_s": delays, "cleared_after_spike_s": clears}))
