"""``weer-serve``: run N daphne processes on one port, so a server uses every core it has.

daphne is single-threaded and cannot share a port by itself. This opens one listening socket
per process on the same address with ``SO_REUSEPORT`` (the kernel spreads new connections
evenly over them) and starts ``daphne --fd`` on each. Each process has its own hub; they share
streams and sequence numbers through Redis, so a client may land on any of them.

    weer-serve --port 8000 --processes 2 [-- extra daphne options, e.g. --proxy-headers]

If one process dies, the others are stopped and the exit status says so, so that the
supervisor (honcho, Kubernetes) restarts the whole server rather than run with a hole in it.
SIGINT and SIGTERM are passed on to every process.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

APPLICATION = "project.asgi:application"


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def serve(host: str, port: int, processes: int, daphne_options: Sequence[str]) -> int:
    sockets = [listening_socket(host, port) for _ in range(processes)]
    children = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and daphne, options from the operator
            [
                sys.executable,
                "-m",
                "realtime.serving.server",
                "--fd",
                str(sock.fileno()),
                *daphne_options,
                APPLICATION,
            ],
            pass_fds=(sock.fileno(),),
        )
        for sock in sockets
    ]
    for sock in sockets:
        sock.close()  # the children hold them now

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    status = 0
    while any(child.poll() is None for child in children):
        for child in children:
            if child.poll() not in (None, 0) and status == 0:
                status = child.returncode if child.returncode > 0 else 1
                print(
                    f"weer-serve: daphne {child.pid} exited ({child.returncode}); stopping all",
                    file=sys.stderr,
                )
                stop(signal.SIGTERM, None)
        time.sleep(0.2)
    return status


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weer-serve", description="Run several daphne processes on one port."
    )
    parser.add_argument("-b", "--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument("-p", "--port", type=int, default=8000)
    parser.add_argument(
        "--processes",
        type=int,
        default=int(os.environ.get("WEB_PROCESSES", "1")),
        help="daphne processes (default: $WEB_PROCESSES or 1)",
    )
    parser.add_argument("daphne_options", nargs="*", help="passed on to daphne (after --)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if options.processes < 1:
        parser().error("--processes must be at least 1")
    return serve(options.bind, options.port, options.processes, options.daphne_options)


if __name__ == "__main__":
    sys.exit(main())
