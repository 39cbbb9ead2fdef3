"""The e-mail's language (R11) and its off-platform disclaimer in both (R12)."""

from __future__ import annotations

import pytest

from parley.server.core.mail_words import (
    LANDING_WORDS,
    OFF_PLATFORM_DISCLAIMER_FR,
    mail_locale,
    order_mail_words,
)
from parley.server.core.roomevents import OFF_PLATFORM_DISCLAIMER


@pytest.mark.parametrize(
    ("locale", "default", "expected"),
    [
        ("fr-CA", "en", "fr-CA"),
        ("fr", "en", "fr-CA"),
        ("FR_ca.UTF-8", "en", "fr-CA"),
        ("en-US", "fr-CA", "en"),
        ("en", "fr-CA", "en"),
        ("de-DE", "fr-CA", "fr-CA"),
        ("es", "en", "en"),
        ("", "fr-CA", "fr-CA"),
        (None, "en", "en"),
    ],
)
def test_r11_the_members_language_or_the_default(
    locale: str | None, default: str, expected: str
) -> None:
    assert mail_locale(locale, default) == expected


def test_r12_the_disclaimer_is_in_both_languages() -> None:
    assert (
        OFF_PLATFORM_DISCLAIMER in order_mail_words("en", "order_confirmation", "buyer").disclaimer
    )
    assert (
        OFF_PLATFORM_DISCLAIMER_FR
        in order_mail_words("fr-CA", "order_confirmation", "seller").disclaimer
    )
    assert LANDING_WORDS["fr-CA"].disclaimer == OFF_PLATFORM_DISCLAIMER_FR


def test_r11_the_button_and_the_counterpart_by_role() -> None:
    assert order_mail_words("en", "order_confirmation", "buyer").button == "Open the conversation"
    assert (
        order_mail_words("fr-CA", "order_confirmation", "buyer").button == "Ouvrir la conversation"
    )
    assert order_mail_words("en", "order_confirmation", "buyer").counterpart_label == "Seller"
    assert order_mail_words("fr-CA", "order_confirmation", "seller").counterpart_label == "Acheteur"
    with pytest.raises(ValueError):
        order_mail_words("de", "order_confirmation", "buyer")


def test_unread_reminders_have_their_own_subject_in_both_languages() -> None:
    en = order_mail_words("en", "unread_reminder", "buyer")
    fr = order_mail_words("fr-CA", "unread_reminder", "seller")
    assert en.subject.startswith("Unread messages") and "{name}" in en.intro
    assert fr.subject.startswith("Messages non lus") and fr.counterpart_label == "Acheteur"
    assert OFF_PLATFORM_DISCLAIMER_FR in fr.disclaimer
