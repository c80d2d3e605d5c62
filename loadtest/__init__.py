"""``weer-loadtest``: an operator's tool that measures a running WeER deployment from outside.

Not part of the server: the production image does not ship it, and nothing in ``project``,
``domain``, ``realtime`` or ``ingestion`` imports it (it imports them: the publish driver uses
the one publishing path, the client processes the server's collector settings). Its own
dependencies (``websockets``, ``uvloop``) are the ``loadtest`` extra.

``cli`` (the command line), ``run`` (one load run: client processes, driving, merged report),
``worker`` (one client process), ``drivers`` (what makes events happen), ``client`` (a lean
websocket client and a crowd of them), ``targets`` (``--targets``: every target of
docs/performance.md), ``reservations`` (reservation round-trip latency) and ``report``
(percentiles and progress lines, which all of them use and which imports none of them).
"""
