"""The private internals of daphne, Twisted and autobahn that realtime.serving relies on.

These fail when an upgrade of a pinned server package (constraints.txt) moves what WeER reads,
instead of letting the server quietly fall back to its slower portable paths.
"""

import ast
import asyncio
import inspect
import re
import textwrap

import daphne.server
import pytest

from domain.models import User
from domain.services.tokens import access_token_issue
from realtime.serving.adapters import FAST
from realtime.serving.server import WEBSOCKET_OPTIONS, WeerServer
from tests.conftest import DaphneServer, read_metrics
from tests.factories import UserFactory
from tests.polling import wait_for
from tests.ws import WsClient

_ADAPTER_LINE = re.compile(
    r'^weer_ws_adapter_sockets_total\{kind="(?P<kind>[^"]+)",part="(?P<part>[^"]+)",'
    r'process="[^"]+"\} (?P<n>\S+)$'
)


def _body_without_docstring(function: object) -> list[ast.stmt]:
    [definition] = ast.parse(textwrap.dedent(inspect.getsource(function))).body  # type: ignore[arg-type]
    assert isinstance(definition, ast.FunctionDef)
    body = definition.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return body


class _OursToDaphnes(ast.NodeTransformer):
    """Undo the one deliberate change of the copy: an ``Inbox`` where daphne has a Queue."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id == "inbox":
            return ast.copy_location(ast.Name(id="input_queue", ctx=node.ctx), node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "Inbox":
            queue = ast.Attribute(
                value=ast.Name(id="asyncio", ctx=ast.Load()), attr="Queue", ctx=ast.Load()
            )
            return ast.copy_location(ast.Call(func=queue, args=[], keywords=[]), node)
        return node


def test_create_application_is_daphnes_with_only_the_inbox_changed() -> None:
    """WeerServer.create_application is a copy of the installed daphne's (statement for
    statement, the Inbox aside): when daphne changes it, this fails and the copy is redone."""
    ours = [
        _OursToDaphnes().visit(node)
        for node in _body_without_docstring(WeerServer.create_application)
    ]
    daphnes = _body_without_docstring(daphne.server.Server.create_application)
    assert [ast.dump(node) for node in ours] == [ast.dump(node) for node in daphnes]


def test_daphne_makes_its_websocket_factory_where_weer_adds_its_options() -> None:
    """daphne's ``run`` still makes its autobahn factory by assigning ``self.ws_factory``
    (where WeerServer adds autobahn's options: close frames, not TCP resets, for bad input)
    and its own options leave ours alone; WeerServer's setter puts them on the factory."""
    source = inspect.getsource(daphne.server.Server.run)
    assert "self.ws_factory = WebSocketFactory(" in source
    daphnes = re.search(r"self\.ws_factory\.setProtocolOptions\((.*?)\)\n", source, re.DOTALL)
    assert daphnes is not None
    assert not set(WEBSOCKET_OPTIONS) & set(re.findall(r"(\w+)=", daphnes[1]))
    server = WeerServer(application=None, endpoints=["tcp:port=0"])
    server.ws_factory = daphne.server.WebSocketFactory(server)
    assert {name: getattr(server.ws_factory, name) for name in WEBSOCKET_OPTIONS} == (
        WEBSOCKET_OPTIONS
    )


def _adapter_counts(http_url: str) -> dict[tuple[str, str], float]:
    text = read_metrics(http_url)
    counts: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        match = _ADAPTER_LINE.match(line)
        if match is not None:
            key = (match["part"], match["kind"])
            counts[key] = counts.get(key, 0.0) + float(match["n"])
    return counts


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_daphne_sockets_get_every_fast_path(daphne_server: DaphneServer) -> None:
    """A socket on daphne gets the light inbox, the Twisted sink writing straight to the
    socket and a released handshake; /metrics counts it, and no socket took a fallback."""
    user: User = await asyncio.to_thread(UserFactory)
    async with WsClient.connect(daphne_server, access_token_issue(user=user)) as client:
        await client.subscribe(f"crew.{user.pk}")

        def every_fast_path_counted() -> dict[tuple[str, str], float] | None:
            counts = _adapter_counts(daphne_server.http_url)  # reported once a second
            return counts if all(counts.get(key, 0) >= 1 for key in FAST.items()) else None

        counts = await asyncio.to_thread(wait_for, every_fast_path_counted, "every fast path")
    fallbacks = {key: n for key, n in counts.items() if FAST[key[0]] != key[1]}
    assert fallbacks == {}
