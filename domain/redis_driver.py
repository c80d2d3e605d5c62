"""redis-py's client identity (``CLIENT SETINFO``), worked out once per process.

redis-py 8.1 reads its own version from the installed package's metadata
(``importlib.metadata``, several ms) for every connection it opens unless it is given a
``DriverInfo``: while a crowd of sockets connected and the connection pools grew, that was
15 % of a server process's CPU (docs/performance.md). Every client on a hot path passes this.
"""

from redis.driver_info import DriverInfo

DRIVER_INFO = DriverInfo()
