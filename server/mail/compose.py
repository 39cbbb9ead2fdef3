"""An e-mail about an order for one member, in their language (R11, R12).

The order confirmation and the unread reminder share one layout: plain text
first, then an HTML alternative, from ``server/templates/mail/order.*``.
Members' words (the listing's title, usernames) are escaped in the HTML; in
headers they are flattened to one line.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Final

from parley.server.core.mail_words import MailKind, Role, order_mail_words
from parley.server.core.model import Listing, Order, User
from parley.server.core.notices import excerpt
from parley.server.rendering import templates

_SUBJECT_TITLE_LIMIT: Final = 60
_TITLE_LIMIT: Final = 200
_NAME_LIMIT: Final = 64


def compose_order_mail(
    *,
    kind: MailKind,
    locale: str,
    role: Role,
    order: Order,
    listing: Listing | None,
    member: User,
    to: str,
    counterpart: User | None,
    link: str,
    sender: str,
    message_id: str,
    now: float,
) -> EmailMessage:
    """The ``kind`` e-mail ``member`` (the order's ``role``) gets about ``order``, at ``to``."""
    words = order_mail_words(locale, kind, role)
    title = excerpt(listing.title, _TITLE_LIMIT) if listing is not None else words.unknown_item
    photo_url = listing.photo_url if listing is not None else None
    if photo_url is not None and not photo_url.startswith(("https://", "http://")):
        photo_url = None  # never a javascript: or data: URL in a member's mail
    name = excerpt(counterpart.name, _NAME_LIMIT) if counterpart is not None else "?"
    subject = words.subject.format(order=order.id, title=excerpt(title, _SUBJECT_TITLE_LIMIT))
    fields = {
        "w": words,
        "subject": subject,
        "intro": words.intro.format(name=name),
        "title": title,
        "photo_url": photo_url,
        "order_id": order.id,
        "counterpart": name,
        "link": link,
    }
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = email.utils.formataddr((excerpt(member.name, _NAME_LIMIT), to))
    message["Date"] = email.utils.format_datetime(datetime.fromtimestamp(now, UTC))
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # no vacation replies to a no-reply address
    env = templates()
    message.set_content(env.get_template("mail/order.txt").render(fields))
    message.add_alternative(env.get_template("mail/order.html").render(fields), subtype="html")
    message["Content-Language"] = locale  # after the parts: set_content clears Content-*
    return message
