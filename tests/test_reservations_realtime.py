"""Both sides of a reservation on real websockets through daphne: the ER screen alerts at once,
the crew sees the decision, and no other hospital or crew receives a thing."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from domain.models import Role, User
from domain.services.tokens import access_token_issue
from tests.conftest import DaphneServer, bearer
from tests.factories import ERStatusFactory, HospitalFactory, UserFactory
from tests.test_reservations import CONDITION
from tests.ws import WsClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@dataclass(frozen=True)
class World:
    """The staff of two Gyeonggi ERs (RTHOSP0A, which reports beds, and RTHOSP0B) and two
    crews."""

    staff_a: User
    staff_b: User
    crew: User
    other_crew: User


@dataclass(frozen=True)
class Sockets:
    """Everyone's websocket, each subscribed to its own stream."""

    screen_a: WsClient  # RTHOSP0A's staff, on hospital.RTHOSP0A
    screen_b: WsClient  # RTHOSP0B's staff, on hospital.RTHOSP0B
    tablet: WsClient  # the crew, on its crew stream and on beds.41
    other_tablet: WsClient  # the other crew, on its crew stream


def _world() -> World:
    a = ERStatusFactory(
        hospital=HospitalFactory(hpid="RTHOSP0A", region_code="41", sido="경기도")
    ).hospital
    b = HospitalFactory(hpid="RTHOSP0B", region_code="41", sido="경기도")
    return World(
        staff_a=UserFactory(role=Role.HOSPITAL, hospital=a),
        staff_b=UserFactory(role=Role.HOSPITAL, hospital=b),
        crew=UserFactory(role=Role.AMBULANCE),
        other_crew=UserFactory(role=Role.AMBULANCE),
    )


def _token(user: User) -> str:
    return access_token_issue(user=user)


def _post(user: User, path: str, body: dict[str, object]) -> Any:
    """POST ``body`` as ``user`` and return the JSON of its 200 or 201 answer."""
    response = Client().post(
        path, json.dumps(body), content_type="application/json", **bearer(user)
    )
    assert response.status_code in (200, 201), response.content
    return response.json()


@asynccontextmanager
async def _everyone_subscribed(server: DaphneServer, world: World) -> AsyncIterator[Sockets]:
    """Both ER screens and both crews' tablets subscribe to their own streams, whose snapshots
    hold no reservation; the crew's tablet also follows its region's beds."""
    async with (
        WsClient.connect(server, _token(world.staff_a)) as screen_a,
        WsClient.connect(server, _token(world.staff_b)) as screen_b,
        WsClient.connect(server, _token(world.crew)) as tablet,
        WsClient.connect(server, _token(world.other_crew)) as other_tablet,
    ):
        for client, stream in [
            (screen_a, "hospital.RTHOSP0A"),
            (screen_b, "hospital.RTHOSP0B"),
            (tablet, f"crew.{world.crew.pk}"),
            (other_tablet, f"crew.{world.other_crew.pk}"),
        ]:
            await client.subscribe(stream)
            assert (await client.next())["data"] == {"reservations": []}
        await tablet.subscribe("beds.41")
        await tablet.next()
        yield Sockets(screen_a, screen_b, tablet, other_tablet)


async def _request_alerts_the_er(world: World, sockets: Sockets) -> int:
    """The crew's request alerts the ER's screen with the patient's condition, and the crew's
    tablet gets its copy; returns the reservation's id."""
    [reservation] = await asyncio.to_thread(
        _post,
        world.crew,
        "/api/reservations",
        {"hospitals": ["RTHOSP0A"], "condition": CONDITION},
    )
    alert = await sockets.screen_a.next()
    assert alert["type"] == "reservation.requested"
    assert alert["data"]["id"] == reservation["id"]
    assert alert["data"]["condition"]["spo2"] == 93
    assert (await sockets.tablet.next())["type"] == "reservation.requested"
    rid: int = reservation["id"]
    return rid


async def _acknowledge_tells_the_crew(world: World, sockets: Sockets, rid: int) -> None:
    """The ER acknowledges: the crew learns when, and the ER's screen is told too."""
    await asyncio.to_thread(_post, world.staff_a, f"/api/reservations/{rid}/acknowledge", {})
    seen = await sockets.tablet.next()
    assert (seen["type"], seen["data"]["acknowledged_at"] is not None) == (
        "reservation.acknowledged",
        True,
    )
    assert (await sockets.screen_a.next())["type"] == "reservation.acknowledged"


async def _approve_decides_and_holds_a_bed(world: World, sockets: Sockets, rid: int) -> None:
    """The ER approves: the crew gets the decision, then the bed held for it on the bed stream;
    the ER's screen gets the decision."""
    await asyncio.to_thread(_post, world.staff_a, f"/api/reservations/{rid}/approve", {})
    decided = await sockets.tablet.next()
    assert (decided["type"], decided["data"]["status"]) == ("reservation.decided", "approved")
    held = await sockets.tablet.next()
    assert held["type"] == "beds.changed"
    assert held["data"] == {
        "hpid": "RTHOSP0A",
        "changes": {"held": {"old": 0, "new": 1}},
        "hvidate": held["data"]["hvidate"],
    }
    assert (await sockets.screen_a.next())["type"] == "reservation.decided"


async def _nobody_else_received_anything(sockets: Sockets) -> None:
    """Nothing else is queued on any socket: the other ER and the other crew got nothing."""
    for client in (sockets.screen_a, sockets.screen_b, sockets.tablet, sockets.other_tablet):
        await client.assert_nothing_pending()


async def _a_reconnected_screen_gets_its_open_reservations(
    server: DaphneServer, world: World, rid: int
) -> None:
    """A screen that reconnects gets its open reservations in the snapshot."""
    async with WsClient.connect(server, _token(world.staff_a)) as screen_a:
        await screen_a.subscribe("hospital.RTHOSP0A")
        snapshot = await screen_a.next()
        assert [(r["id"], r["status"]) for r in snapshot["data"]["reservations"]] == [
            (rid, "approved")
        ]


async def test_er_screen_and_crew_see_each_step_and_nobody_else(
    daphne_server: DaphneServer,
) -> None:
    """request → ER alert; acknowledge → crew told; approve → crew decided, bed held on the
    bed stream; the other ER and the other crew receive nothing at all; a screen that
    reconnects finds the approved reservation in its snapshot."""
    world = await asyncio.to_thread(_world)
    async with _everyone_subscribed(daphne_server, world) as sockets:
        rid = await _request_alerts_the_er(world, sockets)
        await _acknowledge_tells_the_crew(world, sockets, rid)
        await _approve_decides_and_holds_a_bed(world, sockets, rid)
        await _nobody_else_received_anything(sockets)
    await _a_reconnected_screen_gets_its_open_reservations(daphne_server, world, rid)
