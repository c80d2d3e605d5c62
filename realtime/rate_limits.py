"""The websocket side of the rate limits (``domain.services.rate_limits``): connects per
address and per user, and subscriptions per user, counted in Redis across every process.

The client address is daphne's ``scope["client"]``: the peer, or with daphne's
``--proxy-headers`` the address a trusted proxy puts in ``X-Forwarded-For``. Behind a proxy
without it, every client has the proxy's address and shares its limit.
"""

from typing import TYPE_CHECKING

from domain.errors import RateLimited
from domain.services.rate_limits import Limit, address_key, arate_limit_hit
from realtime.auth import SocketUser

if TYPE_CHECKING:
    from channels.consumer import _ChannelScope


async def connect_refusal(scope: "_ChannelScope", user: SocketUser | None) -> RateLimited | None:
    """Why this connect is over a limit, or None. Every connect counts toward its address's
    limit, refused tokens included; an authenticated one also toward its user's (not when the
    address is already over: that connect is refused anyway)."""
    client = scope.get("client")
    if client:
        refusal = await arate_limit_hit(Limit.WS_CONNECTS_PER_ADDRESS, address_key(client[0]))
        if refusal is not None:
            return refusal
    if user is None:
        return None
    return await arate_limit_hit(Limit.WS_CONNECTS_PER_USER, str(user.id))


async def subscribe_refusal(user: SocketUser) -> RateLimited | None:
    """Why subscribing ``user`` to one more stream is over ``LIMIT_SUBSCRIBES_PER_USER``, or
    None (each stream subscribed counts: each costs a snapshot or a replay)."""
    return await arate_limit_hit(Limit.SUBSCRIBES_PER_USER, str(user.id))
