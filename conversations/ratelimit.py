"""How many replies one user may send per minute, whatever the door (page, socket, API)."""

from __future__ import annotations

import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

from vbcrm.types import User

logger = logging.getLogger(__name__)


def send_retry_after(user: User) -> int:
    """Count one send for ``user``: 0 when allowed, else the seconds until the next window.

    At most VBCRM_SEND_RATE_PER_MINUTE per clock minute, in a fixed window in the
    cache: cheap, shared by every web process when the cache is Redis, and the
    worst burst (two windows' worth across a minute boundary) is harmless.
    """
    limit = settings.VBCRM_SEND_RATE_PER_MINUTE
    if limit <= 0:
        return 0
    now = time.time()
    window = int(now // 60)
    key = f"send-rate:{user.pk}:{window}"
    cache.add(key, 0, timeout=90)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=90)
        count = 1
    if count <= limit:
        return 0
    logger.info("send rate limited user=%s", user.pk)
    return max(1, math.ceil((window + 1) * 60 - now))
