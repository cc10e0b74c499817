"""Password rules (ID-4) and hashing (bcrypt).  The rules are pure functions.

A password is acceptable when it has at least 8 characters, at least one letter (any alphabet),
at least one digit (0-9 or another script's decimal digit) and at least one special character
(Unicode punctuation or symbol, e.g. ``!@#$%&*-_+=?~€``).
"""

from __future__ import annotations

import asyncio
import secrets
import string
import unicodedata

import bcrypt

MIN_LENGTH = 8
RULES = {
    "length": f"at least {MIN_LENGTH} characters",
    "letter": "at least one letter",
    "digit": "at least one digit",
    "special": "at least one special character",
}


def is_special(c: str) -> bool:
    return unicodedata.category(c)[0] in "PS"


def password_problems(password: str) -> list[str]:
    """Every rule the password breaks, in words; empty when it is acceptable."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(RULES["length"])
    if not any(c.isalpha() for c in password):
        problems.append(RULES["letter"])
    if not any(c.isdecimal() for c in password):
        problems.append(RULES["digit"])
    if not any(is_special(c) for c in password):
        problems.append(RULES["special"])
    return problems


def describe_problems(problems: list[str]) -> str:
    return "Password must contain " + ", ".join(problems) + "."


def _secret_bytes(password: str) -> bytes:
    # bcrypt looks at the first 72 bytes only (bcrypt>=5 refuses longer input): cut explicitly.
    # ``surrogatepass`` keeps any JSON string (even a lone surrogate) hashable instead of a 500.
    return password.encode("utf-8", "surrogatepass")[:72]


def hash_password(password: str) -> str:
    return bcrypt.hashpw(_secret_bytes(password), bcrypt.gensalt(rounds=10)).decode()


def verify_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(_secret_bytes(password), hashed.encode())
    except ValueError:
        return False


# bcrypt takes tens of milliseconds on purpose and releases the GIL: keep it off the event loop.
async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, hashed: str) -> bool:
    return await asyncio.to_thread(verify_password, password, hashed)


# Checked against when the account does not exist, so both cases cost one bcrypt round.
DUMMY_HASH = bcrypt.hashpw(b"workbay-no-such-user", bcrypt.gensalt(rounds=10)).decode()


def generate_password(length: int = 16) -> str:
    """A random password that satisfies the rules."""
    alphabet = string.ascii_letters + string.digits + "!@#$%^&*-_"
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if not password_problems(pw):
            return pw
