"""Participant-page protections that live in this app: CSP header and rate limits.

Both are applied per view (the admin and the API keep their own policies), so no
project setting or global middleware is needed.
"""

from __future__ import annotations

import functools
import ipaddress
import time

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpResponse, JsonResponse

# No inline script or style, nothing from another origin. Navigation to a platform's
# completion URL is a plain link or location change, which CSP does not restrict.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)


def strict_csp(view):
    """Decorate a view so its responses carry the strict policy and referrer headers."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        # same-origin, not no-referrer: browsers then send "Origin: null" on form posts,
        # which Django's CSRF origin check refuses.
        response["Referrer-Policy"] = "same-origin"
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "no-store"
        return response

    return wrapped


def _address(value: str):
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_ip(request) -> str:
    """The client's address: ``REMOTE_ADDR``, or from ``X-Forwarded-For`` behind trusted proxies.

    With ``settings.TRUSTED_PROXIES`` (networks), the chain ``X-Forwarded-For`` +
    ``REMOTE_ADDR`` is read from the right, skipping trusted proxies; the first other
    address is the client. With ``settings.PROXY_HOPS`` = n, the client is the address n
    places from the right. Entries a client wrote itself (left of what the proxies
    appended) are never reached, so a forged header changes nothing.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    networks = [
        ipaddress.ip_network(n, strict=False) for n in getattr(settings, "TRUSTED_PROXIES", [])
    ]
    hops = getattr(settings, "PROXY_HOPS", 0)
    if not networks and not hops:
        return remote
    forwarded = [
        part.strip()
        for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if part.strip()
    ]
    chain = [*forwarded, remote]
    if networks:
        for entry in reversed(chain):
            address = _address(entry)
            if address is None:
                return remote  # garbage in the header: stop at the last proxy's peer
            if not any(address in n for n in networks):
                return str(address)
        return str(_address(chain[0]))
    if len(chain) <= hops:
        return remote
    address = _address(chain[-(hops + 1)])
    return str(address) if address is not None else remote


def _clock() -> float:
    return time.time()


_REDIS_CLIENTS: dict[str, object] = {}


def _redis_client():
    """A Redis client for the default cache's server, or None when the cache is not Redis.

    One client per process: Django's Redis cache builds a client for every call and its
    ``incr`` checks that the key exists first, three round trips per counted request.
    """
    if not isinstance(caches["default"], RedisCache):
        return None
    config = settings.CACHES["default"]
    location = config.get("LOCATION")
    if not isinstance(location, str) or "," in location or ";" in location or config.get("OPTIONS"):
        return None  # several servers or client options: the cache API decides
    client = _REDIS_CLIENTS.get(location)
    if client is None:
        import redis

        client = _REDIS_CLIENTS.setdefault(location, redis.Redis.from_url(location))
    return client


def hit(bucket: str, *, limit: int, window: int) -> bool:
    """Count one request in a fixed window; True while the bucket is within its limit."""
    key = f"participants:rl:{bucket}:{int(_clock() // window)}"
    client = _redis_client()
    if client is not None:
        # One round trip: create the counter with its expiry if missing, then count.
        full_key = cache.make_and_validate_key(key)
        pipe = client.pipeline(transaction=False)
        pipe.set(full_key, 0, ex=window + 1, nx=True)
        pipe.incr(full_key)
        return pipe.execute()[1] <= limit
    if cache.add(key, 1, timeout=window + 1):
        return True
    try:
        count = cache.incr(key)
    except ValueError:
        cache.add(key, 1, timeout=window + 1)
        return True
    return count <= limit


def rate_limit(scope: str, *, limit: int, window: int = 60, by: str = "ip"):
    """Refuse (429, with Retry-After) more than ``limit`` requests per ``window`` seconds.

    Args:
        scope: names the limit, so views have separate budgets.
        limit: requests allowed per window, unless ``settings.PARTICIPANT_RATE_LIMITS``
            names this scope.
        window: window length in seconds.
        by: ``ip`` (client address) or ``token`` (the session token in the URL).
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            who = kwargs.get("token", "") if by == "token" else client_ip(request)
            allowed = settings.PARTICIPANT_RATE_LIMITS.get(scope, limit)
            if not hit(f"{scope}:{who}", limit=allowed, window=window):
                if request.content_type == "application/json" or by == "token":
                    response = JsonResponse({"error": "rate_limited"}, status=429)
                else:
                    response = HttpResponse("Too many requests; please wait a minute.", status=429)
                response["Retry-After"] = str(window)
                return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


# Admin login lockout: counted per address and per (address, username), so one attacker
# cannot lock a researcher out from elsewhere by guessing at their username.
LOGIN_FAILURES_PER_USER = 5
LOGIN_FAILURES_PER_IP = 20
LOCKOUT_SECONDS = 15 * 60


def lockout_login(view):
    """Wrap a login view: refuse (429) after repeated failures for 15 minutes.

    A failure is a POST after which the request is still anonymous; a success clears
    the counters of that address and username.
    """
    if getattr(view, "locks_out", False):
        return view

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method != "POST":
            return view(request, *args, **kwargs)
        ip = client_ip(request)
        username = request.POST.get("username", "")[:150].lower()
        keys = {
            f"participants:login:ip:{ip}": LOGIN_FAILURES_PER_IP,
            f"participants:login:user:{ip}:{username}": LOGIN_FAILURES_PER_USER,
        }
        if any((cache.get(key) or 0) >= limit for key, limit in keys.items()):
            response = HttpResponse("Too many failed logins. Try again in 15 minutes.", status=429)
            response["Retry-After"] = str(LOCKOUT_SECONDS)
            return response
        response = view(request, *args, **kwargs)
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            cache.delete(f"participants:login:user:{ip}:{username}")
        else:
            for key in keys:
                cache.add(key, 0, timeout=LOCKOUT_SECONDS)
                try:
                    cache.incr(key)
                except ValueError:
                    cache.set(key, 1, timeout=LOCKOUT_SECONDS)
        return response

    wrapped.locks_out = True
    return wrapped
