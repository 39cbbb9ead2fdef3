"""Where composed e-mails go: ``.eml`` files (``files``) or an SMTP server (``smtp``).

Errors are translated here, once, into ``MailError`` (worth retrying) or
``MailRefused`` (the server refused for good: 5xx); their messages hold codes
and reasons, never addresses or bodies, so they can be logged as they are.
"""

from __future__ import annotations

import abc
import asyncio
import os
from email.message import EmailMessage
from pathlib import Path
from typing import Final

import aiosmtplib

from parley.server.config import Config

SMTP_TIMEOUT: Final = 30.0  # seconds for one SMTP exchange before it counts as failed


class MailError(Exception):
    """Sending failed for now: the sender tries again later."""


class MailRefused(MailError):
    """The server refused the message for good (a 5xx): trying again will not help."""


class MailTransport(abc.ABC):
    @abc.abstractmethod
    async def send(self, message: EmailMessage, name: str) -> None:
        """Hand ``message`` over; ``name`` is unique per job and safe in a file name."""


class FilesTransport(MailTransport):
    """One ``<name>.eml`` per message in ``directory``; needs no mail server.

    Written to a temporary file, flushed to disk, then renamed: a reader never
    sees half a message, and a job sent again replaces its own file.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    async def send(self, message: EmailMessage, name: str) -> None:
        try:
            await asyncio.to_thread(self._write, message.as_bytes(), name)
        except OSError as exc:
            raise MailError(f"cannot write the message: {exc.strerror}") from None

    def _write(self, data: bytes, name: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{name}.eml"
        temporary = self.directory / f".{name}.eml.tmp"
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, final)


class SmtpTransport(MailTransport):
    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: str = "none",
        username: str = "",
        password: str = "",
        timeout: float = SMTP_TIMEOUT,
    ) -> None:
        if tls not in ("none", "starttls", "tls"):
            raise ValueError("tls must be none, starttls or tls")
        self.host = host
        self.port = port
        self.tls = tls
        self.username = username or None
        self.password = password or None
        self.timeout = timeout

    async def send(self, message: EmailMessage, name: str) -> None:
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                use_tls=self.tls == "tls",
                start_tls=self.tls == "starttls",  # False, not "if offered": none means none
                username=self.username,
                password=self.password,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({refused.code for refused in exc.recipients})
            error = MailRefused if all(code >= 500 for code in codes) else MailError
            raise error(f"recipient refused: SMTP {codes}") from None
        except aiosmtplib.SMTPResponseException as exc:
            error = MailRefused if exc.code >= 500 else MailError
            raise error(f"SMTP {exc.code}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailError(f"SMTP: {type(exc).__name__}") from None


def open_transport(config: Config) -> MailTransport:
    if config.mail_backend == "smtp":
        return SmtpTransport(
            config.smtp_host,
            config.smtp_port,
            tls=config.smtp_tls,
            username=config.smtp_username,
            password=config.smtp_password,
        )
    return FilesTransport(config.mail_dir)
