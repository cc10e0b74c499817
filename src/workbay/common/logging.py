"""Logging setup; secrets never reach the log (we log access keys, never secret keys or passwords).

Every log record made in the process passes through ``redact_record`` (a LogRecord factory,
installed by ``install_redaction``: every component, uvicorn's and httpx's loggers and whatever
handler prints them): query-string values, Authorization/Cookie/secret header values and JWTs
become ``REDACTED``.  A storage download URL with ``?token=…`` is logged as
``?token=REDACTED``; the token itself never is."""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "REDACTED"

# A query string: what follows "?" up to whitespace, a quote, a bracket or a fragment (not SQL's
# "?, ?)" placeholders: a query starts with a name character).
_QUERY = re.compile(r"\?(?=[\w.~%-])([^\s\"'<>#`()\[\]{}|\\]+)")
# Header values: "Authorization: x", 'authorization': 'x', (b'cookie', b'x'), cookie=x
_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization|\b(?:set-)?cookie|x-workbay-secret|x-api-key|x-auth-token)"
    r"(['\"]?\s*[:=,]\s*(?:b?['\"])?)([^'\"\r\n]+)")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


def _redact_query(match: re.Match) -> str:
    parts = []
    for part in re.split(r"([&;])", match.group(1)):
        if part in ("&", ";", ""):
            parts.append(part)
        elif "=" in part:
            parts.append(part.split("=", 1)[0] + "=" + REDACTED)
        else:
            parts.append(REDACTED)
    return "?" + "".join(parts)


def redact(text: str) -> str:
    """``text`` without query-string values, credential header values or JWTs."""
    if "?" in text:
        text = _QUERY.sub(_redact_query, text)
    text = _HEADER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    return text


def _redact_arg(arg: Any) -> Any:
    if isinstance(arg, (int, float, bool)) or arg is None:
        return arg  # keeps %d and friends working
    text = arg if isinstance(arg, str) else None
    if text is None:
        if isinstance(arg, (bytes, bytearray)):
            text = bytes(arg).decode("utf-8", "replace")
        elif type(arg).__module__.startswith(("httpx", "starlette", "yarl", "urllib")) \
                or isinstance(arg, (dict, list, tuple)):
            text = str(arg)  # URLs and header maps are printed with str() anyway
        else:
            return arg
    clean = redact(text)
    return arg if clean == text else clean


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact a record in place.  Arguments are redacted one by one, their shape kept (uvicorn's
    access formatter unpacks them); a secret only the formatted message shows (``"?token=%s"``)
    makes the record carry its redacted, formatted message and no arguments.  The text of an
    exception or stack the record carries is redacted too."""
    args = record.args
    if isinstance(args, tuple):
        record.args = tuple(_redact_arg(a) for a in args)
    elif isinstance(args, dict):
        record.args = {k: _redact_arg(v) for k, v in args.items()}
    if not isinstance(record.msg, str):
        if record.msg is not None and not isinstance(record.msg, (int, float)):
            record.msg = str(record.msg)
    if isinstance(record.msg, str):
        try:
            full = record.msg % record.args if record.args else record.msg
        except (TypeError, ValueError, KeyError):
            full = None  # a broken call: logging reports it; still never print a secret
        if full is None:
            record.msg = redact(record.msg)
        else:
            clean = redact(full)
            if clean != full:
                record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """The same redaction as a filter, for handlers configured outside Workbay."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_FILTER = RedactingFilter()
THIRD_PARTY_LOGGERS = ("httpx", "httpcore", "uvicorn", "uvicorn.access", "uvicorn.error", "uvicorn.asgi")


def install_redaction() -> None:
    """Redact every record this process makes (idempotent).  A LogRecord factory covers every
    logger and handler (uvicorn's access logger does not propagate to the root's handlers); the
    filter also sits on the HTTP loggers in case a library installs its own record factory."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "_workbay_redacting", False):
        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(current(*args, **kwargs))

        factory._workbay_redacting = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)
    for name in THIRD_PARTY_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def setup_logging(level: str = "INFO") -> None:
    install_redaction()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
