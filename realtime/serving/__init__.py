"""How WeER runs under daphne: the adapters that reach into daphne, Twisted and autobahn.

``server`` (daphne with a lighter per-connection inbox), ``twisted_sink`` (frames written
straight to the socket), ``adapters`` (which of those fast paths each socket got, counted and
logged), ``gctuning`` (collector settings for many sockets) and ``serve`` (``weer-serve``: N
daphne processes on one port). The delivery core (hub, sessions, publishing, snapshots) knows
none of this: it writes to a ``realtime.sinks.Sink``.
"""
