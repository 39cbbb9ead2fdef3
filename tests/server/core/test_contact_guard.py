"""R8 contact details: what the guard finds in French and English marketplace messages, what
it leaves alone (addresses, tracking numbers, prices, sizes, dates, references, mentions), and
properties that hold for any text: no crash, sorted disjoint findings, same length, idempotence,
and a cheap first look that never hides a finding."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parley.server.core import contact_guard
from parley.server.core.contact_guard import (
    MASK_CHAR,
    Finding,
    find_contact_details,
    mask_contact_details,
)
from tests.server.core.contact_corpus import CASES, KEEP, MEMBERS, Case

SEVEN_DIGITS = re.compile(r"\d(?:[ .\-()]*\d){6}")
AT_DOMAIN = re.compile(r"@\s*\w+\s*\.\s*\w")


def fully_masked(text: str, masked: str, part: str) -> bool:
    start = text.index(part)
    return all(c == MASK_CHAR or c in "\r\n" for c in masked[start : start + len(part)])


def test_r8_the_corpus_is_large_and_balanced() -> None:
    must_mask = [case for case in CASES if case.mask]
    assert len(CASES) >= 140
    assert len(must_mask) >= 60 and len(KEEP) >= 60
    assert len({case.text for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [c for c in CASES if c.mask], ids=lambda c: c.why)
def test_r8_contact_details_are_masked(case: Case) -> None:
    findings = find_contact_details(case.text, members=MEMBERS)
    masked = mask_contact_details(case.text, findings)
    assert tuple(f.kind for f in findings) == case.mask, (case.text, masked)
    for secret in case.secrets:
        assert fully_masked(case.text, masked, secret), (secret, masked)
    rest = masked
    for part in case.shown:
        assert part in masked, (part, masked)
        rest = rest.replace(part, "")
    if "phone" in case.mask:
        assert SEVEN_DIGITS.search(rest) is None, masked
    if "email" in case.mask:
        assert AT_DOMAIN.search(rest) is None, masked


@pytest.mark.parametrize("case", KEEP, ids=lambda c: c.why)
def test_r8_legitimate_text_is_left_alone(case: Case) -> None:
    assert find_contact_details(case.text, members=MEMBERS) == [], case.text


def test_r8_masking_keeps_length_line_breaks_and_everything_else() -> None:
    text = "Salut!\nMon cell:\n514 555-0123\nmerci"
    findings = find_contact_details(text)
    assert findings == [Finding("phone", 17, 29)]
    assert mask_contact_details(text, findings) == f"Salut!\nMon cell:\n{MASK_CHAR * 12}\nmerci"
    spread = "cinq un quatre\ncinq cinq cinq\nzéro un deux trois"
    masked = mask_contact_details(spread, find_contact_details(spread))
    assert masked.count("\n") == 2 and set(masked) == {MASK_CHAR, "\n"}


def test_r8_a_span_covers_the_handle_not_the_network_name() -> None:
    text = "mon snap c'est bibi22"
    [finding] = find_contact_details(text)
    assert text[finding.start : finding.end] == "bibi22"
    text = "Suis-moi sur tiktok: @lili.friperie"
    [finding] = find_contact_details(text)
    assert text[finding.start : finding.end] == "@lili.friperie"


def test_r8_overlapping_findings_merge_into_the_longer_kind() -> None:
    text = "wa.me/15145550123"  # a link holding a phone number
    assert find_contact_details(text) == [Finding("social", 0, len(text))]


def test_r8_the_region_decides_numbers_without_a_prefix() -> None:
    assert find_contact_details("06 12 34 56 78", region="FR") == [Finding("phone", 0, 14)]
    assert find_contact_details("514 555 0123", region="FR") == []
    assert find_contact_details("appelle le 514 555 0123", region="US") != []


@pytest.mark.parametrize(
    "text",
    [
        "Bonjour! Est-ce que le manteau est encore disponible? Je fais une taille M, merci",
        "Would you take 40 $ for it? I can pick it up Saturday near Jean-Talon market",
        "Les bottes sont en cuir, pointure 38,5, portées une saison. Je baisse à 60 $.",
        "Oui, il est toujours dispo! Acheté en 2021, poitrine 52 cm, longueur 70 cm.",
    ],
)
def test_r8_a_typical_comment_stops_at_the_cheap_look(text: str) -> None:
    assert contact_guard._gates(text) is contact_guard._NOTHING


# --- Mentions (R4) -------------------------------------------------------------------------


def test_r8_a_disguise_is_masked_as_written_around_a_mention() -> None:
    keycaps = "".join(f"{d}\ufe0f\u20e3" for d in "5145550187")
    text = f"@alice mon cell {keycaps}, ou in\u200bsta: lea_qc99!"
    findings = find_contact_details(text, members={"alice"})
    masked = mask_contact_details(text, findings)
    assert len(masked) == len(text) and masked.startswith("@alice mon cell ")
    start = text.index(keycaps)
    assert masked[start : start + len(keycaps)] == MASK_CHAR * len(keycaps)  # every code point
    assert masked.endswith(f"in\u200bsta: {MASK_CHAR * 8}!")
    assert [f.kind for f in findings] == ["phone", "social"]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("t\u00e9l: 514\u200b555\u200b0187", "514\u200b555\u200b0187"),
        ("cell \uff15\uff11\uff14-\uff15\uff15\uff15-\uff10\uff11\uff18\uff17", None),
        ("appelle 5\u20e31\u20e34\u20e3 5\u20e35\u20e35\u20e3 0\u20e31\u20e38\u20e37\u20e3", None),
    ],
)
def test_r8_a_finding_covers_the_characters_as_written(text: str, secret: str | None) -> None:
    [finding] = find_contact_details(text)
    covered = text[finding.start : finding.end]
    assert covered == (secret or text[text.index(" ") + 1 :])


def test_r8_a_members_mention_is_never_masked_even_next_to_a_network() -> None:
    for text in ("insta @alice", "@alice sur insta", "IG: @Alice", "mon snap c'est alice"):
        assert find_contact_details(text, members={"alice"}) == [], text


def test_r8_an_unknown_name_next_to_a_network_is_a_handle() -> None:
    text = "mon snap: @bibi"
    assert find_contact_details(text, members={"alice"}) == [Finding("social", 10, 15)]
    assert find_contact_details("@bibi sur snap", members={"alice"}) == [Finding("social", 0, 5)]


def test_r8_an_unknown_name_alone_stays_text() -> None:
    assert find_contact_details("@bibi tu peux passer samedi?", members={"alice"}) == []
    assert find_contact_details("@bibi", members=()) == []


def test_r8_an_email_address_is_not_a_mention_and_is_masked() -> None:
    text = "alice@gmail.com"
    assert find_contact_details(text, members={"alice"}) == [Finding("email", 0, len(text))]


# --- Properties ----------------------------------------------------------------------------

# Pieces of contact details, near misses and separators: joined at random they come close.
FRAGMENTS = (
    *("514", "555", "0123", "5", "1", "0", "22", "+1", "+33", "00", "O", "I", "l", "5I4"),
    *("zéro", "ZÉRO", "un", "cinq", "five", "oh", "o", "suivi", "DHL", "#", "$", "cell"),
    *(" ", "  ", "-", ".", ",", "(", ")", "[", "]", "\n", ": ", "_", "é", "\u2019", "«", "•"),
    *("@", "@bibi", "@alice", "jean", "j e a n", "Jean", "Tremblay", "c'est", "is"),
    *("gmail", "hotmail", "videotron", " at ", " dot ", " point ", "[at]", "(.)", ".com"),
    *(".ca", " com", "arobase", "chez", "insta", "IG", "snap", "whatsapp", "tik tok"),
    *("wa.me/", "instagram.com/", "x.com/", "ajoute-moi sur", "add me on"),
    # Disguises: look-alikes, invisible characters, emoji digits, words between groups.
    *("\uff15", "\uff11\uff14", "\uff20", "\uff0e", "\u200b", "\u200d", "\ufe0f", "\u20e3"),
    *("\U0001d7f1", "\u2464", "\u0665", "\u043e", "\u0430", "\u2460", "\u260e", "\U0001f4de"),
    *(" then ", " puis ", " (même) ", "cent", "quatorze", "hundred", "s n a p", "gram"),
    *("instagrm", "=>", "gmail: ", "\u0301", "\u00a0"),
)
messages = st.one_of(
    st.text(max_size=120),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=30).map("".join),
)
PROPERTY = settings(max_examples=300, deadline=None, database=None)


@PROPERTY
@given(messages)
def test_r8_findings_are_sorted_disjoint_and_within_the_text(text: str) -> None:
    findings = find_contact_details(text, members={"alice"})
    previous_end = 0
    for f in findings:
        assert previous_end <= f.start < f.end <= len(text)
        assert f.kind in ("email", "phone", "social")
        previous_end = f.end


@PROPERTY
@given(messages)
def test_r8_masking_keeps_the_length_and_is_idempotent(text: str) -> None:
    masked = mask_contact_details(text, find_contact_details(text, members={"alice"}))
    assert len(masked) == len(text)
    assert find_contact_details(masked, members={"alice"}) == []
    assert mask_contact_details(masked, find_contact_details(masked, members={"alice"})) == masked


@PROPERTY
@given(messages)
def test_r8_a_text_with_nothing_found_comes_back_unchanged(text: str) -> None:
    if not find_contact_details(text):
        assert mask_contact_details(text, []) == text
        assert mask_contact_details(text, find_contact_details(text)) == text


@PROPERTY
@given(messages)
def test_r8_the_cheap_first_look_never_hides_a_finding(text: str) -> None:
    looked = contact_guard._detect(text, "CA", (), contact_guard._gates(text))
    assert looked == contact_guard._detect(text, "CA", (), contact_guard._EVERYTHING)
