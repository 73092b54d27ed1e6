"""Log redaction: known secret values, and AWS secret fields by name, become ``********``.

A backstop: secrets are typed :class:`~finops_pipeline.security.credentials.Secret` objects that
never render themselves; this filter catches what a library logs on its own.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from finops_pipeline.security.credentials import Secret

__all__ = ["GLOBAL_REDACTOR", "MASK", "RedactingFilter", "install_redaction", "register_secrets"]

MASK = "********"

#: Shorter values would redact ordinary words and numbers all over the logs.
MIN_SECRET_LENGTH = 6

# Credentials AWS generates (AssumeRole session keys) are logged by botocore at DEBUG before
# our code sees them (boto/botocore issue 2626), so they cannot be registered by value in time.
# Mask them by field name instead, in XML bodies, JSON bodies and Python dict reprs.
_AWS_SECRET_FIELDS = (
    "SecretAccessKey|SessionToken|secret_access_key|aws_secret_access_key|session_token"
    "|aws_session_token|X-Amz-Security-Token"
)
_FIELD_PATTERNS = (
    re.compile(rf"(<(?:{_AWS_SECRET_FIELDS})>)[^<]*(</)"),
    re.compile(rf"""((?:{_AWS_SECRET_FIELDS})["']?\s*[:=]\s*b?["'])[^"']*(["'])"""),
)


# --- log redaction -------------------------------------------------------------------------


class RedactingFilter(logging.Filter):
    """A logging filter that replaces known secret values with ``********``.

    It renders each record's message (applying its args), redacts it, and stores the result as
    ``record.msg`` with empty ``args``, so a later formatter cannot reintroduce a secret from the
    args. Exception and stack text are redacted too. Records are never dropped.
    """

    def __init__(self, secrets: Iterable[str | Secret] = ()) -> None:
        """Create a filter.

        Args:
            secrets: Values to redact. Values shorter than 6 characters are ignored.
        """
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *values: str | Secret) -> None:
        """Add values to redact. Values shorter than 6 characters are ignored.

        Args:
            *values: Secret strings or :class:`Secret` objects.
        """
        with self._lock:
            for value in values:
                text = value if isinstance(value, str) else value.reveal()
                if isinstance(text, str) and len(text) >= MIN_SECRET_LENGTH:
                    self._secrets.add(text)
            # Longest first, so a secret that contains another is masked as a whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            # Readers use the pattern without the lock; assigning it is atomic.
            self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        """Return ``text`` with every registered secret replaced by the mask."""
        if not text:
            return text
        for field_pattern in _FIELD_PATTERNS:
            text = field_pattern.sub(rf"\g<1>{MASK}\g<2>", text)
        pattern = self._pattern
        if pattern is None:
            return text
        return pattern.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place.

        Args:
            record: The log record.

        Returns:
            Always True: redaction never suppresses a record.
        """
        try:
            message = record.getMessage()
        except Exception:
            # Mismatched args: keep everything visible for debugging, but redacted.
            message = f"{record.msg!s} (args: {record.args!r})"
        redacted = self.redact(message)
        # With no registered secrets and no AWS secret field, the message stays as it came.
        if self._pattern is not None or redacted != message:
            record.msg = redacted
            record.args = ()
        if record.exc_info and not record.exc_text:
            # Formatters only render exc_info when exc_text is empty, so render it here to be
            # able to redact secrets quoted in exception messages.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


#: The process-wide filter fed by :func:`register_secrets` and installed by
#: :func:`install_redaction`.
GLOBAL_REDACTOR = RedactingFilter()


def register_secrets(*values: str | Secret) -> None:
    """Add values to the process-wide redaction registry.

    Values shorter than 6 characters are ignored.

    Args:
        *values: Secret strings or :class:`Secret` objects.
    """
    GLOBAL_REDACTOR.add(*values)


def install_redaction(
    logger_names: Iterable[str] = ("", "botocore", "boto3", "urllib3", "dagster"),
) -> None:
    """Attach :data:`GLOBAL_REDACTOR` to the given loggers and to every root-logger handler.

    Filters on a logger do not run for records propagated up from its child loggers, so the
    root handlers get the filter too. Handlers added to the root logger later are not covered:
    call this again after configuring logging. Calling it repeatedly is harmless.

    Args:
        logger_names: Loggers to attach to; ``""`` is the root logger.
    """
    for name in logger_names:
        logging.getLogger(name).addFilter(GLOBAL_REDACTOR)
    for handler in logging.getLogger().handlers:
        handler.addFilter(GLOBAL_REDACTOR)
