"""The floor for issue 15's connect target: how fast plain Python accepts authenticated
subscribes on this machine, with none of WeER's server stack (no daphne, ASGI, Channels,
Django, rate limits or Redis).

A ``websockets`` (asyncio) server, ``--processes`` of them on one port (``SO_REUSEPORT``, as
``weer-serve``), that speaks just enough of docs/protocol.md for ``weer-loadtest`` to connect
and subscribe: it checks the token's signature and expiry (PyJWT, the deployment's
``JWT_SIGNING_KEY``), answers a ``subscribe`` with ``subscribed`` and a snapshot the size of
``beds.11``'s compressed one (``--snapshot-bytes``), and then holds the socket. Run it, then
the same ``weer-loadtest`` command as against WeER:

    JWT_SIGNING_KEY=… python benchmarks/connect_floor.py --port 8012 --processes 2
    weer-loadtest --url http://127.0.0.1:8012 --tokens tokens.txt --drive simulator \\
        --stream beds.11 --clients 10000 --rate 1 --duration 0 --settle 0
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import socket

import jwt
from websockets.asyncio.server import ServerConnection, serve


def _listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    return sock


async def _serve(port: int, key: str, snapshot: bytes) -> None:
    async def handler(ws: ServerConnection) -> None:
        query = (ws.request.path if ws.request else "").partition("?")[2]
        token = dict(p.partition("=")[::2] for p in query.split("&")).get("token", "")
        try:
            jwt.decode(token, key, algorithms=["HS256"], options={"require": ["exp"]})
        except jwt.PyJWTError:
            await ws.close(4401)
            return
        async for message in ws:
            request = json.loads(message)
            for stream in request.get("streams", []):
                await ws.send(json.dumps({"type": "subscribed", "stream": stream, "seq": 0}))
                await ws.send(snapshot)

    async with serve(handler, sock=_listening_socket(port), compression=None):
        await asyncio.Future()


def _process(port: int, key: str, snapshot_bytes: int) -> None:
    asyncio.run(_serve(port, key, os.urandom(snapshot_bytes)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8012)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--snapshot-bytes", type=int, default=10_300)
    args = parser.parse_args()
    key = os.environ["JWT_SIGNING_KEY"]
    workers = [
        multiprocessing.Process(target=_process, args=(args.port, key, args.snapshot_bytes))
        for _ in range(args.processes)
    ]
    for worker in workers:
        worker.start()
    print(f"connect floor: {args.processes} processes on 127.0.0.1:{args.port}", flush=True)
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
