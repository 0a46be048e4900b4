from pathlib import Path

import pytest

from gateway.support.bot import OfflineBot
from gateway.support.knowledge import Knowledge
from gateway.support.responder import BotQuery

HERE = Path(__file__).resolve().parent
ROOM_B = HERE / "room_b.json"


@pytest.fixture(scope="session")
def bot() -> OfflineBot:
    b = OfflineBot()
    b.warm_up()
    return b


@pytest.fixture
def kb_b() -> Knowledge:
    return Knowledge.load(ROOM_B)


@pytest.fixture
def kb_demo() -> Knowledge:
    from gateway.support.knowledge import demo_room_path
    return Knowledge.load(demo_room_path())


@pytest.fixture
def ask(bot):
    def _ask(kb, text, history=(), lang=None):
        return bot.answer(BotQuery(text=text, history=list(history), knowledge=kb, lang=lang))
    return _ask
