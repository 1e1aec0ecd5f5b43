"""Throttles in Redis: one piece of code for the login and for every form that costs us something.

Two kinds:
- `Throttle.attempt(limit, address, ip)`: a fixed window per address and per client IP for forms
  that create things or send mail (signup, a new company, forgot-password, invitations, e-mail
  confirmation). It answers how many seconds to wait, 0 when the attempt may go ahead.
- the login (`failed` / `wait` / `succeeded`): the first FREE_FAILURES (9) wrong passwords cost
  nothing; each later one imposes a delay that doubles (15 s, 30 s, … up to 15 minutes) before
  the next try is even checked. A guesser gets a handful of tries an hour, while the real owner
  is told how long to wait (or uses the reset link) and is never locked out for long.
Keys hold hashes of the addresses, never the addresses themselves (no personal data in Redis keys).
"""
from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from litestar.connection import ASGIConnection
from redis.asyncio import Redis


@dataclass(frozen=True)
class Limit:
    name: str
    per_address: int  # attempts per address (or user) in a window
    per_ip: int  # attempts per client IP in a window
    window: int  # seconds


HOUR = 3600
SIGNUP = Limit("signup", per_address=3, per_ip=10, window=HOUR)
NEW_COMPANY = Limit("company", per_address=5, per_ip=10, window=24 * HOUR)
FORGOT = Limit("forgot", per_address=3, per_ip=20, window=HOUR)
CONFIRM_MAIL = Limit("confirm", per_address=3, per_ip=20, window=HOUR)
INVITATION = Limit("invite", per_address=10, per_ip=30, window=HOUR)

# The login.
FREE_FAILURES = 9  # as many as before this throttle; the tenth wrong password starts the delays
FIRST_DELAY = 15
MAX_DELAY = 15 * 60
FAILURE_MEMORY = 24 * HOUR  # failures are forgotten a day after the last one (or at a success)
LOGIN_IP_LIMIT = 50  # wrong passwords from one IP, any accounts, in LOGIN_IP_WINDOW
LOGIN_IP_WINDOW = 15 * 60


def _h(value: str) -> str:
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def login_delay(failures: int) -> int:
    """Seconds before the next try after `failures` wrong passwords in a row."""
    if failures < FREE_FAILURES:
        return 0
    return min(FIRST_DELAY * 2 ** min(failures - FREE_FAILURES, 20), MAX_DELAY)


class Throttle:
    def __init__(self, redis: Redis, prefix: str, *, per_ip: bool = True) -> None:
        self.redis = redis
        self.prefix = prefix
        self.per_ip = per_ip  # False on a development or test machine for its own loopback address

    # ---- forms ---------------------------------------------------------------------------

    async def attempt(self, limit: Limit, address: str, ip: str) -> int:
        """Count one attempt; the seconds to wait if it is over a limit, else 0."""
        counters = [(f"{self.prefix}:thr:{limit.name}:a:{_h(address)}", limit.per_address)]
        if self.per_ip:
            counters.append((f"{self.prefix}:thr:{limit.name}:ip:{ip}", limit.per_ip))
        async with self.redis.pipeline(transaction=True) as pipe:
            for key, _n in counters:
                pipe.set(key, 0, ex=limit.window, nx=True)
                pipe.incr(key)
                pipe.ttl(key)
            replies = await pipe.execute()
        wait = 0
        for i, (_key, allowed) in enumerate(counters):
            count, ttl = replies[3 * i + 1], replies[3 * i + 2]
            if count > allowed:
                wait = max(wait, ttl if ttl > 0 else limit.window)
        return wait

    # ---- the login -----------------------------------------------------------------------

    def _login_keys(self, email: str, ip: str) -> tuple[str, str, str]:
        base = f"{self.prefix}:login"
        return f"{base}:fail:{_h(email)}", f"{base}:wait:{_h(email)}", f"{base}:ip:{ip}"

    async def wait(self, email: str, ip: str) -> int:
        """Seconds before this account may try again from this IP (0: go ahead)."""
        _fail, wait_key, ip_key = self._login_keys(email, ip)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.ttl(wait_key)
            pipe.get(ip_key)
            pipe.ttl(ip_key)
            account_ttl, ip_count, ip_ttl = await pipe.execute()
        wait = max(account_ttl, 0)
        if self.per_ip and int(ip_count or 0) >= LOGIN_IP_LIMIT:
            wait = max(wait, ip_ttl if ip_ttl > 0 else LOGIN_IP_WINDOW)
        return wait

    async def failed(self, email: str, ip: str) -> int:
        """Record a wrong password; the delay it imposes on the account (0 while still free)."""
        fail_key, wait_key, ip_key = self._login_keys(email, ip)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(fail_key)
            pipe.expire(fail_key, FAILURE_MEMORY)
            pipe.set(ip_key, 0, ex=LOGIN_IP_WINDOW, nx=True)
            pipe.incr(ip_key)
            failures = (await pipe.execute())[0]
        delay = login_delay(failures)
        if delay:
            await self.redis.set(wait_key, 1, ex=delay)
        return delay

    async def succeeded(self, email: str, ip: str) -> None:
        fail_key, wait_key, _ip = self._login_keys(email, ip)
        await self.redis.delete(fail_key, wait_key)

    async def blocked(self, email: str, ip: str) -> bool:
        """Kept for callers that only need yes or no (the console's password confirmation)."""
        return await self.wait(email, ip) > 0


def for_request(request: ASGIConnection) -> tuple[Throttle, str]:
    """The app's throttle and the client's IP. Development and test machines do not count their
    own loopback address per IP (every local browser and test shares it); production always does."""
    state = request.app.state
    ip = request.client.host if request.client else "unknown"
    per_ip = state.settings.production or not is_loopback(ip)
    return Throttle(state.redis, state.settings.redis_prefix, per_ip=per_ip), ip
