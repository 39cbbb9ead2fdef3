"""R8 in usernames: a name that is or holds a phone, an e-mail address or another
network's account is refused; ordinary names, with digits, dots and accents, are kept."""

from __future__ import annotations

import pytest

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.usernames import check_username, username_contact

REFUSED = [
    ("5145552661", "phone"),
    ("514-555-2661", "phone"),
    ("514.555.2661", "phone"),
    ("514_555_0187", "phone"),
    ("lea5145552661", "phone"),
    ("julie_514_555_0187", "phone"),
    ("+33612345678", "phone"),
    ("call 514 555 0199", "phone"),
    ("\uff15\uff11\uff14\uff15\uff15\uff15\uff12\uff16\uff16\uff11", "phone"),  # fullwidth
    ("514\u200b555\u200b2661", "phone"),  # zero-width spaces
    ("joe@gmail.com", "email"),
    ("julie.tremblay.gmail.com", "email"),
    ("julie.tremblay@videotron.ca", "email"),
    ("joe_hotmail", "email"),
    ("gmail-julie88", "email"),
    ("snap.lea99", "social"),
    ("lea_insta", "social"),
    ("ig-lea_qc99", "social"),
    ("leasnapchat", "social"),
    ("tiktok.mtl", "social"),
    ("WhatsApp_Julie", "social"),
    ("instagram.com/lea", "social"),
]
KEPT = [
    "alice",
    "Jos\u00e9e",
    "Jos\u00e9e-Anne",
    "jean-luc",
    "marie.tremblay",
    "bob_the_buyer",
    "lea2003",
    "seller42",
    "josh_1987",
    "marie_05_12",
    "Tom_514",
    "user_12345",
    "friperie.mtl",
    "instant_deals",
    "signal_fire",
    "\u5c0f\u660e",
    "\u0417\u043e\u044f",  # a Cyrillic name
]


@pytest.mark.parametrize(("name", "kind"), REFUSED)
def test_r8_a_username_with_contact_details_is_refused(name: str, kind: str) -> None:
    assert username_contact(name) == kind
    with pytest.raises(ParleyError) as info:
        check_username(name)
    assert info.value.code is ErrorCode.username_contact_details
    assert info.value.details == {"kind": kind}


@pytest.mark.parametrize("name", KEPT)
def test_r8_an_ordinary_username_is_kept(name: str) -> None:
    assert username_contact(name) is None
    check_username(name)
