"""Two deployments on one Redis server never see each other's events (Redis pub/sub channels
ignore the database number), and a foreign event cannot silence a stream."""

import asyncio
import os
import subprocess
import sys

import pytest
from django.conf import settings

from domain.services.tokens import access_token_issue
from realtime.publishing import publish_event
from tests.conftest import DaphneServer
from tests.factories import UserFactory
from tests.ws import WsClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

_PUBLISH_ELSEWHERE = """
import django, sys
django.setup()
from realtime.publishing import publish_event
for n in range(int(sys.argv[1])):
    publish_event("beds.all", "beds.changed", {"hpid": "FOREIGN", "changes": {}, "n": n})
"""


def _other_deployment_publishes(count: int) -> None:
    """Another deployment, on another database of the same Redis server, publishes to its own
    ``beds.all`` (its counter far ahead of ours: a staging system that ran for longer)."""
    other_db = settings.REDIS_URL.rsplit("/", 1)[0] + "/14"
    env = {
        **os.environ,
        "REDIS_URL": other_db,
        "DJANGO_SETTINGS_MODULE": "project.settings",
    }
    env.pop("REDIS_NAMESPACE", None)
    subprocess.run(
        [sys.executable, "-c", _PUBLISH_ELSEWHERE, str(count)],
        env=env,
        cwd=settings.BASE_DIR,
        check=True,
        timeout=60,
    )


async def test_a_deployment_on_another_database_is_not_heard(daphne_server: DaphneServer) -> None:
    """Events of a deployment on another Redis database reach none of our clients, and ours
    keep arriving after them, in sequence."""
    user = await asyncio.to_thread(UserFactory)
    async with WsClient.connect(daphne_server, access_token_issue(user=user)) as client:
        head = (await client.subscribe("beds.all"))["seq"]
        assert (await client.next())["type"] == "snapshot"
        await asyncio.to_thread(_other_deployment_publishes, 3)
        for n in range(3):
            await asyncio.to_thread(
                publish_event, "beds.all", "beds.changed", {"hpid": "OURS", "changes": {}, "n": n}
            )
        events = await client.events(3)
        assert [e["data"]["hpid"] for e in events] == ["OURS"] * 3
        assert [e["seq"] for e in events] == [head + 1, head + 2, head + 3]
        await client.assert_nothing_pending()
