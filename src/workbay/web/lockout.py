"""Login lockout (ID-5) of the webserver: the rule lives in ``workbay.common.lockout`` (the
manager applies the same rule to ``/auth/authorize``, per account and per client address)."""

from __future__ import annotations

from workbay.common.lockout import Lock, LockoutStore, MemoryLockout, RedisLockout, account_key

__all__ = ["Lock", "LockoutStore", "MemoryLockout", "RedisLockout", "account_key"]
