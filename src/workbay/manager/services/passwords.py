"""Password rules (ID-4) and hashing (bcrypt)."""

from __future__ import annotations

import secrets
import string

import bcrypt

MIN_LENGTH = 8
SPECIALS = set(string.punctuation)


def password_problems(password: str) -> list[str]:
    """Every rule the password breaks, in words; empty when it is acceptable."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"at least {MIN_LENGTH} characters")
    if not any(c.isalpha() for c in password):
        problems.append("at least one letter")
    if not any(c.isdigit() for c in password):
        problems.append("at least one digit")
    if not any(c in SPECIALS for c in password):
        problems.append("at least one special character")
    return problems


def describe_problems(problems: list[str]) -> str:
    return "Password must contain " + ", ".join(problems) + "."


def hash_password(password: str) -> str:
    # bcrypt only looks at the first 72 bytes; longer passwords are refused by validation upstream
    return bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=10)).decode()


def verify_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode()[:72], hashed.encode())
    except ValueError:
        return False


def generate_password(length: int = 16) -> str:
    """A random password that satisfies the rules."""
    alphabet = string.ascii_letters + string.digits + "!@#$%^&*-_"
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if not password_problems(pw):
            return pw
