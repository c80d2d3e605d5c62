"""Both sides of a reservation on real websockets through daphne: the ER screen alerts at once,
the crew sees the decision, and no other hospital or crew receives a thing."""

import asyncio
import json

import pytest
from django.test import Client

from domain.models import Role
from domain.services.tokens import access_token_issue
from tests.conftest import DaphneServer, bearer
from tests.factories import ERStatusFactory, HospitalFactory, UserFactory
from tests.test_reservations import CONDITION
from tests.ws import WsClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _world() -> dict:
    a = ERStatusFactory(
        hospital=HospitalFactory(hpid="RTHOSP0A", region_code="41", sido="경기도")
    ).hospital
    b = HospitalFactory(hpid="RTHOSP0B", region_code="41", sido="경기도")
    return {
        "a": a,
        "b": b,
        "staff_a": UserFactory(role=Role.HOSPITAL, hospital=a),
        "staff_b": UserFactory(role=Role.HOSPITAL, hospital=b),
        "crew": UserFactory(role=Role.AMBULANCE),
        "other_crew": UserFactory(role=Role.AMBULANCE),
    }


def _post(user, path: str, body: dict) -> dict:
    response = Client().post(
        path, json.dumps(body), content_type="application/json", **bearer(user)
    )
    assert response.status_code in (200, 201), response.content
    return response.json()


async def test_er_screen_and_crew_see_each_step_and_nobody_else(
    daphne_server: DaphneServer,
) -> None:
    """request → ER alert; acknowledge → crew told; approve → crew decided, bed held on the
    bed stream; the other ER and the other crew receive nothing at all."""
    world = await asyncio.to_thread(_world)
    token = lambda user: access_token_issue(user=user)  # noqa: E731
    async with (
        WsClient.connect(daphne_server, token(world["staff_a"])) as screen_a,
        WsClient.connect(daphne_server, token(world["staff_b"])) as screen_b,
        WsClient.connect(daphne_server, token(world["crew"])) as tablet,
        WsClient.connect(daphne_server, token(world["other_crew"])) as other_tablet,
    ):
        for client, stream in [
            (screen_a, "hospital.RTHOSP0A"),
            (screen_b, "hospital.RTHOSP0B"),
            (tablet, f"crew.{world['crew'].pk}"),
            (other_tablet, f"crew.{world['other_crew'].pk}"),
        ]:
            await client.subscribe(stream)
            assert (await client.next())["data"] == {"reservations": []}
        await tablet.subscribe("beds.41")
        await tablet.next()

        [reservation] = await asyncio.to_thread(
            _post,
            world["crew"],
            "/api/reservations",
            {"hospitals": ["RTHOSP0A"], "condition": CONDITION},
        )
        alert = await screen_a.next()
        assert alert["type"] == "reservation.requested"
        assert alert["data"]["id"] == reservation["id"]
        assert alert["data"]["condition"]["spo2"] == 93
        assert (await tablet.next())["type"] == "reservation.requested"

        rid = reservation["id"]
        await asyncio.to_thread(_post, world["staff_a"], f"/api/reservations/{rid}/acknowledge", {})
        seen = await tablet.next()
        assert (seen["type"], seen["data"]["acknowledged_at"] is not None) == (
            "reservation.acknowledged",
            True,
        )
        assert (await screen_a.next())["type"] == "reservation.acknowledged"

        await asyncio.to_thread(_post, world["staff_a"], f"/api/reservations/{rid}/approve", {})
        decided = await tablet.next()
        assert (decided["type"], decided["data"]["status"]) == ("reservation.decided", "approved")
        held = await tablet.next()
        assert held["type"] == "beds.changed"
        assert held["data"] == {
            "hpid": "RTHOSP0A",
            "changes": {"held": {"old": 0, "new": 1}},
            "hvidate": held["data"]["hvidate"],
        }
        assert (await screen_a.next())["type"] == "reservation.decided"

        for client in (screen_a, screen_b, tablet, other_tablet):
            await client.assert_nothing_pending()

    # A screen that reconnects gets its open reservations in the snapshot.
    async with WsClient.connect(daphne_server, token(world["staff_a"])) as screen_a:
        await screen_a.subscribe("hospital.RTHOSP0A")
        snapshot = await screen_a.next()
        assert [(r["id"], r["status"]) for r in snapshot["data"]["reservations"]] == [
            (rid, "approved")
        ]
