"""The radar's window on a simulated clock: counts fall as questions age out of the window;
a pinned group stays listed (at 0) so the host panel shows the pin working."""

from __future__ import annotations

from tests.radar.test_radar_protocol import GROUP, PIN


def test_a_pinned_groups_count_falls_out_of_the_window_and_the_group_stays_listed():
    from gateway.support.events import QuestionClassified
    from gateway.support.knowledge import Knowledge, demo_room_path
    from gateway.support.radar import Radar
    from gateway.support.room import RoomRegistry

    now = [1_800_000_000.0]
    rooms = RoomRegistry()
    rooms.add(Knowledge.load(demo_room_path()))
    radar = Radar(rooms, clock=lambda: now[0])

    def asked(viewer: str, slot: str, at: float) -> None:
        radar.observe(QuestionClassified("demo", None, viewer, f"M? {viewer}", "stock", "D001",
                                         slot, (), at))

    for i in range(20):
        asked(f"v{i}", "M", now[0] + i)
    asked("w", "L", now[0] + 19.5)  # observations arrive in time order
    now[0] += 30
    radar.pin("demo", GROUP, PIN, "host")
    counts = {g["group"]: g["viewers"] for g in radar.groups("demo", 60)}
    assert counts == {GROUP: 20, "stock|D001|L": 1}
    asked("late", "M", now[0])  # one asks after the pin
    [g] = [x for x in radar.groups("demo", 60) if x["group"] == GROUP]
    assert (g["viewers"], g["viewers_since_pin"]) == (21, 1)
    now[0] += 45  # the first 16 aged out of the 1-minute window: the count falls
    [g] = [x for x in radar.groups("demo", 60) if x["group"] == GROUP]
    assert (g["viewers"], g["viewers_since_pin"]) == (5, 1)
    now[0] += 60
    groups = radar.groups("demo", 60)
    assert [(x["group"], x["viewers"], x["pinned"]) for x in groups] == [(GROUP, 0, PIN)]
    assert radar.groups("demo", 900)[0]["viewers"] == 21  # the 15-minute window still holds them
