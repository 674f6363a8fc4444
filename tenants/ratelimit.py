"""Rate limits over the shared cache (Redis in production; without REDIS_URL, the embedded
mode's in-memory cache, which increments under a lock within its single process).

`hit` limits requests: a sliding-window counter, the current minute's count plus the previous
minute's, weighted by how much of it still lies inside the window. Two cache keys per limit and
one atomic increment.

`take` is a hard quota on a paid resource: at most `limit` in each fixed window (a clock
minute for a 60 s window), counted with one atomic increment, so concurrent callers can never
take more than the limit between them.
"""

import logging
import math
import time

from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


def hit(name: str, limit: int, window: int = 60) -> float | None:
    """Count one request against `name`; return None if allowed, else seconds to wait.

    While the cache is unreachable (Redis restarting) requests are let through, with a warning:
    these limits shield the service from floods, and refusing every request would be the outage
    they guard against. Paid resources are never let through this way (`take`)."""
    try:
        return _hit(name, limit, window)
    except RedisError as error:
        logger.warning(
            "rate limit not applied: the cache is unavailable",
            extra={"limit": name.split(":", 1)[0], "error": str(error)},
        )
        return None


def _hit(name: str, limit: int, window: int) -> float | None:
    now = time.time()
    current_start = math.floor(now / window) * window
    current_key = f"ratelimit:{name}:{current_start}"
    previous_key = f"ratelimit:{name}:{current_start - window}"

    # add() is SET NX, so the first request of a window creates the counter with its expiry.
    cache.add(current_key, 0, timeout=window * 2)
    try:
        current = cache.incr(current_key)
    except ValueError:  # expired between add() and incr()
        cache.set(current_key, 1, timeout=window * 2)
        current = 1
    previous = cache.get(previous_key, 0)

    elapsed = now - current_start
    weight = 1 - elapsed / window
    if previous * weight + current <= limit:
        return None
    if current > limit or previous == 0:
        return max(current_start + window - now, 1.0)
    # Wait until enough of the previous window has slid out for this request to fit.
    needed_weight = (limit - current) / previous
    return max((1 - needed_weight) * window - elapsed, 1.0)


def take(name: str, limit: int, window: int = 60) -> float | None:
    """Take one of the `limit` slots of `name` in the current window; return None if one was
    free, else the seconds until the next window starts.

    Windows are aligned to the epoch (a 60 s window is a clock minute in UTC). The increment is
    the whole decision: the slot is taken by whoever's increment returns at most `limit`.
    While the cache is unreachable this raises (RedisError): nothing paid is let through uncounted.
    """
    now = time.time()
    start = math.floor(now / window) * window
    key = f"quota:{name}:{start}"
    cache.add(key, 0, timeout=window * 2)
    try:
        taken = cache.incr(key)
    except ValueError:  # expired between add() and incr(): start it again, atomically
        cache.add(key, 0, timeout=window * 2)
        taken = cache.incr(key)
    if taken <= limit:
        return None
    return start + window - now
