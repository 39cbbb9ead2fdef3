"""R4 @mentions: which usernames exist, whose name a mention writes, and what in a comment is
a mention: not an e-mail address, not a URL, not a name too long to be one."""

from __future__ import annotations

import random

import pytest

from parley.server.core import mentions
from parley.server.core.mentions import (
    MAX_NOTIFIED,
    MAX_USERNAME,
    MentionSpan,
    distinct_keys,
    find_mentions,
    is_valid_username,
    username_key,
)

ZOE_DECOMPOSED = "zoe\u0301"  # "zoé" as some keyboards send it: 'e' then a combining accent


def names(text: str) -> list[str]:
    return [span.name for span in find_mentions(text)]


def test_r4_the_limits() -> None:
    assert MAX_USERNAME == 64
    assert MAX_NOTIFIED == 10


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "7",
        "_",
        "zoé",
        "Zoé",
        "Josée-Anne",
        "jean.tremblay",
        "marc_22",
        "_marc_",
        "a.b-c.d",
        "Ørjan",
        "Дмитрий",
        "李小龍",
        ZOE_DECOMPOSED,
        "a" * MAX_USERNAME,
        "é" * MAX_USERNAME,
        "e\u0301" * MAX_USERNAME,  # 64 letters once the accents are put on them
    ],
)
def test_r4_valid_usernames(name: str) -> None:
    assert is_valid_username(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".bob",
        "bob.",
        "-bob",
        "bob-",
        "a..b",
        "a.-b",
        "a--b",
        "with space",
        " bob",
        "bob\n",
        "bob@home",
        "@bob",
        "jean+tag",
        "o'neil",
        "zoé!",
        "\u0301zoe",  # an accent with no letter under it
        "a" * (MAX_USERNAME + 1),
        "\u00a0",
        "😀",
    ],
)
def test_r4_invalid_usernames(name: str) -> None:
    assert not is_valid_username(name)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("ZOÉ", "zoé"),
        ("Zoé", ZOE_DECOMPOSED),
        ("MARIE", "marie"),
        ("Straße", "STRASSE"),
        ("\uff4a\uff45\uff41\uff4e", "jean"),  # full-width letters, as CJK keyboards type them
        ("Josée-Anne", "josée-anne"),
    ],
)
def test_r4_a_username_is_one_member_in_any_case_and_form(first: str, second: str) -> None:
    assert username_key(first) == username_key(second)


@pytest.mark.parametrize(
    "look_alike",
    [
        "Jos\u00e9e\u200b",  # a zero-width space after it
        "\u200bJos\u00e9e",
        "Jos\u200de\u0301e",  # a zero-width joiner inside, the accent apart
        "J\u043es\u00e9e",  # Cyrillic o
        "J\u03bfs\u00e9e",  # Greek omicron
        "Jos\u00e9e ",  # a trailing space
        " Jos\u00e9e\u00a0",  # a leading space and a no-break space
        "Jos\u00e9e\ufe0f",  # a variation selector
        "Jos\u00e9e\u00ad",  # a soft hyphen
        "\u202eJos\u00e9e",  # a right-to-left override
        "JOS\u00c9E",
        "\uff2a\uff4f\uff53\u00e9\uff45",  # fullwidth
        "\U0001d409os\u00e9e",  # a mathematical J
    ],
)
def test_r4_a_look_alike_name_is_the_same_member(look_alike: str) -> None:
    assert username_key(look_alike) == username_key("Jos\u00e9e")


@pytest.mark.parametrize(
    ("first", "second"),
    [("j0hn", "john"), ("rnarie", "marie"), ("\u0455am", "sam"), ("paul1", "paull")],
)
def test_r4_names_with_one_confusable_skeleton_are_one_member(first: str, second: str) -> None:
    assert username_key(first) == username_key(second)


def test_r4_different_names_have_different_keys() -> None:
    assert username_key("zoe") != username_key("zoé")
    assert username_key("jean.tremblay") != username_key("jean-tremblay")
    assert username_key("josee") != username_key("josée")
    assert username_key("marie") != username_key("maria")
    assert username_key("bob_1") != username_key("bob_2")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@marie", ["marie"]),
        ("Bonjour @marie, est-ce encore disponible?", ["marie"]),
        ("Salut @marie. Tu as vu le prix?", ["marie"]),
        ("@marie... tu es là?", ["marie"]),
        ("Merci @jean-luc, je le prends!", ["jean-luc"]),
        ("Regarde ça @zoé!", ["zoé"]),
        ("(@marie) a posé la même question", ["marie"]),
        ("[@marie] {@bob} <@carl>", ["marie", "bob", "carl"]),
        ("«@Zoé» a dit oui", ["Zoé"]),
        ("« @Zoé » a dit oui", ["Zoé"]),
        ('"@alice" said yes', ["alice"]),
        ("“@alice” said yes", ["alice"]),
        ("'@alice' said yes", ["alice"]),
        ("\u2018@alice\u2019 said yes", ["alice"]),
        ("@marie's coat is lovely", ["marie"]),
        ("@marie\u2019s coat is lovely", ["marie"]),
        ("@bob: is the zipper working?", ["bob"]),
        ("@bob; @carl", ["bob", "carl"]),
        ("Hi,@bob!@carl?@dana", ["bob", "carl", "dana"]),
        ("*@bob* look at this", ["bob"]),
        ("> @bob wrote that", ["bob"]),
        (">@bob wrote that", ["bob"]),
        ("👍@bob", ["bob"]),
        ("line one\n@bob\tand @carl", ["bob", "carl"]),
        ("@jean.tremblay tu veux le manteau?", ["jean.tremblay"]),
        ("@marc_22 it's yours for $40", ["marc_22"]),
        ("@Josée-Anne, la taille M te ferait", ["Josée-Anne"]),
        ("@a..b", ["a"]),
        ("@bob-", ["bob"]),
        ("@_", ["_"]),
        ("@123 is that a size?", ["123"]),  # all digits: a span that names no member
        (f"@{ZOE_DECOMPOSED}, viens voir", [ZOE_DECOMPOSED]),
    ],
)
def test_r4_mentions_are_found_at_the_start_of_a_word(text: str, expected: list[str]) -> None:
    assert names(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no at sign here",
        "@",
        "@ alice",
        "@.",
        "@-bob",
        "@@",
        "@@x",
        "email me: jean@gmail.com",
        "a@b",
        "Écris-moi à jean.tremblay@videotron.ca",
        "prenom.nom@gmail.com",
        "my address is @jean@gmail.com",
        "@jean.tremblay@videotron.ca",
        f"josé@gmail.com with the accent typed apart: jos{ZOE_DECOMPOSED[-2:]}@gmail.com",
        "bob+ads@site.com",
        "first-last@site.com",
        "first_last@site.com",
        "https://medium.com/@alice",
        "see https://medium.com/@alice for the story",
        "HTTPS://MEDIUM.COM/@ALICE",
        "http://user@host.com/x",
        "www.site.com/@bob",
        "medium.com/@alice",
        "mailto:jean@x.com",
        "https://x.com/share?via=(@bob)",
        "ftp://files.example/@archive",
        "key=@value",
        "50%@cost",
        "a&@b",
        "~@home",
        "time:@noon",
        "@" + "a" * (MAX_USERNAME + 1),
        "@" + "a" * 200 + " hello",
    ],
)
def test_r4_no_mention_in_addresses_urls_and_stray_signs(text: str) -> None:
    assert find_mentions(text) == []


def test_r4_a_mention_right_after_a_url_still_counts() -> None:
    text = "Photos: https://imgur.com/a/xyz @marie, https://medium.com/@alice and (@bob)"
    assert names(text) == ["marie", "bob"]


def test_r4_spans_index_the_original_text() -> None:
    text = f"Salut «@{ZOE_DECOMPOSED}» et @Marie."
    spans = find_mentions(text)
    assert spans == [
        MentionSpan(ZOE_DECOMPOSED, "zoé", 7, 12),
        MentionSpan("Marie", username_key("marie"), 17, 23),  # "rnarie": m looks like rn
    ]
    for span in spans:
        assert text[span.start] == "@"
        assert text[span.start + 1 : span.end] == span.name


def test_r4_a_name_of_the_longest_length_is_found_and_a_longer_one_is_not_cut_down() -> None:
    longest = "a" * MAX_USERNAME
    assert names(f"hi @{longest}!") == [longest]
    assert names(f"hi @{longest}b!") == []
    assert names(f"hi @{longest}.b!") == []  # "aaa….b" is one name, too long
    accented = "e\u0301" * MAX_USERNAME
    assert names(f"@{accented}") == [accented]


def test_r4_repeats_are_separate_spans_with_one_key() -> None:
    spans = find_mentions("@Alice @alice @ALICE")
    assert [span.name for span in spans] == ["Alice", "alice", "ALICE"]
    assert {span.key for span in spans} == {"alice"}
    assert distinct_keys(spans) == ["alice"]


def test_r4_distinct_keys_keep_the_order_of_first_mention() -> None:
    spans = find_mentions(f"@Zoé @bob @{ZOE_DECOMPOSED} @carl @BOB @zoé")
    assert distinct_keys(spans) == ["zoé", "bob", "carl"]
    assert distinct_keys([]) == []


def test_r4_a_text_without_an_at_sign_is_not_scanned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mentions, "_URL_OR_MENTION_RE", None)
    assert find_mentions("Toujours disponible? Je peux passer ce soir. " * 100) == []


@pytest.mark.parametrize(
    "text",
    [
        "a." * 20_000 + " @x",
        "@" + "a" * 40_000 + "@",
        "@a" * 20_000,
        "x@" * 20_000,
        ("w" * 31 + ".") * 1_000 + " @b",
        "https://" * 5_000 + " @c",
    ],
    ids=["dots", "long-run", "at-a", "x-at", "scheme-like", "schemes"],
)
def test_r4_long_hostile_texts_are_read_in_one_pass(text: str) -> None:
    # Quadratic scanning would take minutes here and trip the suite's timeout.
    spans = find_mentions(text)
    assert all(span.key in {"x", "b", "c"} for span in spans)


# '@' three times so that most texts hold several; "https", "w." and ':' '/' make URLs.
FUZZ_ALPHABET = "@@@ab.-_é\u0301Z9 \n/:(«»'\u2019,!https w.+="


@pytest.mark.parametrize("seed", range(8))
def test_r4_fuzzed_texts_give_sound_spans(seed: int) -> None:
    rng = random.Random(seed)
    found = 0
    for _ in range(50):
        text = "".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(0, 80)))
        spans = find_mentions(text)
        previous_end = 0
        for span in spans:
            assert previous_end <= span.start < span.end <= len(text)
            assert text[span.start] == "@"
            assert text[span.start + 1 : span.end] == span.name
            assert is_valid_username(span.name)
            assert span.key == username_key(span.name)
            assert span.end == len(text) or text[span.end] != "@"
            previous_end = span.end
        found += len(spans)
    assert found > 0  # the alphabet does make mentions, so the checks above ran
