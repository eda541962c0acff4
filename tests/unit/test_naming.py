"""Tests for notionfs.naming: hostile titles, truncation, dedup rules, Hypothesis properties."""

from __future__ import annotations

import hashlib
import random
import unicodedata
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notionfs.naming import (
    CLEAN_NAME_MAX_BYTES,
    NAME_MAX_BYTES,
    PLACEHOLDER_TITLE,
    NameRequest,
    assign_names,
    clean_name,
    dedup_suffix,
    file_name_from_url,
    is_valid_name,
    split_extension,
)

ID_A = "3f2a9c1b-0d4e-4c5f-8a6b-7c8d9e0f1a2b"
ID_B = "8e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b"
ID_C = "c0ffee00-1111-4222-8333-444455556666"


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def fold(name: str) -> str:
    return unicodedata.normalize("NFC", name.casefold())


def req(key: str, raw: str, order: str, is_file: bool = False) -> NameRequest:
    return NameRequest(key=key, raw=raw, order=order, is_file=is_file)


def uid(n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"notionfs-test-{n}"))


# --------------------------------------------------------------------------- clean_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Plain title", "Plain title"),
        ("a/b/c", "a／b／c"),
        ("back\\slash", "back\\slash"),
        ("nul\x00here", "nulhere"),
        ("bell\x07 and del\x7f and c1\x9b", "bell and del and c1"),
        ("line one\nline two", "line one line two"),
        ("crlf\r\n\r\nruns", "crlf runs"),
        ("tab\tstop", "tab stop"),
        ("next\x85line", "next line"),
        ("para\u2029graph", "para graph"),
        ("  padded \u3000", "padded"),
        ("trailing. ", "trailing"),
        ("trailing . . .", "trailing"),
        ("v1.2 release", "v1.2 release"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("\u2066isolate\u2069 \u200emark\u200f \u061c", "isolate mark"),
        ("cafe\u0301", "café"),  # NFD input -> NFC
        ("e\x00\u0301", "é"),  # normalised after dropping what split the pair
        ("🎉 Launch ❤️", "🎉 Launch ❤️"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ('Windows <bad>:"chars"|?*', 'Windows <bad>:"chars"|?*'),
    ],
)
def test_clean_name_examples(raw: str, expected: str) -> None:
    assert clean_name(raw) == expected


@pytest.mark.parametrize("raw", ["", " ", "   ", "\t\n", ".", "..", "...", ". .", "\x00", "\u202e"])
@pytest.mark.parametrize("is_file", [False, True])
def test_empty_dot_and_dotdot_become_placeholder(raw: str, is_file: bool) -> None:
    assert clean_name(raw, is_file=is_file) == PLACEHOLDER_TITLE
    assert clean_name(raw, is_file=is_file, placeholder="file") == "file"


def test_invalid_placeholder_is_refused() -> None:
    with pytest.raises(ValueError):
        clean_name("", placeholder="a/b")


def test_leading_dot_visible_for_titles_kept_for_files() -> None:
    assert clean_name(".hidden") == "．hidden"
    assert clean_name("...three") == "．..three"
    assert clean_name(".gitignore", is_file=True) == ".gitignore"
    assert clean_name(".env.local", is_file=True) == ".env.local"


def test_file_names_keep_extensions_and_trim_trailing_dots() -> None:
    assert clean_name(" photo.png ", is_file=True) == "photo.png"
    assert clean_name("report.pdf.", is_file=True) == "report.pdf"
    assert clean_name("a/b.txt", is_file=True) == "a／b.txt"


def test_long_ascii_title_is_cut_to_leave_room_for_a_suffix() -> None:
    name = clean_name("x" * 300)
    assert name == "x" * CLEAN_NAME_MAX_BYTES
    assert CLEAN_NAME_MAX_BYTES + len(" (3f2a9c1b)") == NAME_MAX_BYTES


def test_long_title_never_splits_multibyte_characters() -> None:
    name = clean_name("é" * 300)  # 2 bytes each
    assert name == "é" * (CLEAN_NAME_MAX_BYTES // 2)
    name = clean_name("a" + "日" * 300)  # 3 bytes each, cut falls mid-character
    assert name == "a" + "日" * ((CLEAN_NAME_MAX_BYTES - 1) // 3)


def test_long_file_name_keeps_extension() -> None:
    name = clean_name("x" * 300 + ".png", is_file=True)
    assert name.endswith("xxx.png")
    assert utf8_len(name) == CLEAN_NAME_MAX_BYTES
    name = clean_name("y" * 300 + ".tar.gz", is_file=True)
    assert name.endswith("yyy.tar.gz")


def test_cut_does_not_end_on_space_or_dot() -> None:
    words = "word " * 100 + ".png"
    name = clean_name(words, is_file=True)
    assert name.endswith("word.png")
    assert not clean_name("ab. " * 100).endswith((" ", "."))


@pytest.mark.parametrize(
    "cluster",
    [
        "❤️",  # emoji + variation selector 16
        "👍🏽",  # emoji + skin-tone modifier
        "👨‍👩‍👧",  # ZWJ sequence
        "🇫🇷",  # regional-indicator pair
        "🏴󠁧󠁢󠁳󠁣󠁴󠁿",  # tag sequence (Scotland)
        "ǹ̃",  # base + two combining marks that do not compose
        "1️⃣",  # keycap
    ],
)
@pytest.mark.parametrize("prefix", ["", "a", "ab", "abc"])
def test_truncation_keeps_clusters_whole(cluster: str, prefix: str) -> None:
    name = clean_name(prefix + cluster * 200)
    assert name.startswith(prefix)
    rest = name[len(prefix) :]
    assert rest == cluster * (len(rest) // len(cluster))
    assert utf8_len(name) > CLEAN_NAME_MAX_BYTES - utf8_len(cluster)


def test_one_enormous_cluster_falls_back_to_code_points() -> None:
    name = clean_name("a" + "\u0301\u0302" * 300)
    assert is_valid_name(name)
    assert name.startswith("á")


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("photo.png", ("photo", ".png")),
        ("photo.final.JPEG", ("photo.final", ".JPEG")),
        ("archive.tar.gz", ("archive", ".tar.gz")),
        (".tar.gz", (".tar", ".gz")),
        (".gitignore", (".gitignore", "")),
        ("README", ("README", "")),
        ("v1.2 release", ("v1.2 release", "")),
        ("notes. Part 2", ("notes. Part 2", "")),
        ("x.averyveryverylongextension", ("x.averyveryverylongextension", "")),
        ("trailing.", ("trailing.", "")),
        ("c.c++", ("c", ".c++")),
    ],
)
def test_split_extension(name: str, expected: tuple[str, str]) -> None:
    assert split_extension(name) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://prod-files-secure.s3.us-west-2.amazonaws.com/ws/f1/Team%20photo.png"
            "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc#frag",
            "Team photo.png",
        ),
        ("https://example.com/a/b/%E6%97%A5%E6%9C%AC.pdf", "日本.pdf"),
        ("https://example.com/a%2Fb.txt", "a/b.txt"),  # raw: clean_name handles the slash
        ("https://example.com/x?name=file.png", "x"),
        ("HTTP://EXAMPLE.COM/Up.TXT", "Up.TXT"),
        ("https://example.com/dir/", None),
        ("https://example.com", None),
        ("https://example.com/%20", None),
        ("https://example.com/a/..", None),
        ("", None),
        ("data:image/png;base64,iVBORw0KGgo=", None),
        ("javascript:alert(1)", None),
        ("http://[::1/x.png", None),  # unparseable
    ],
)
def test_file_name_from_url(url: str, expected: str | None) -> None:
    assert file_name_from_url(url) == expected


def test_dedup_suffix_uses_the_id_at_the_end_of_the_key() -> None:
    assert dedup_suffix(ID_A) == "3f2a9c1b"
    assert dedup_suffix("page:" + ID_A.upper()) == "3f2a9c1b"
    assert dedup_suffix("root/block:" + ID_A.replace("-", "")) == "3f2a9c1b"
    assert dedup_suffix(ID_A, 12) == "3f2a9c1b0d4e"
    assert dedup_suffix(ID_A, 100) == ID_A.replace("-", "")


def test_dedup_suffix_hashes_other_keys() -> None:
    key = f"page:{ID_A}/cover"
    assert dedup_suffix(key) == hashlib.sha256(key.encode()).hexdigest()[:8]
    assert dedup_suffix(key, 100) == hashlib.sha256(key.encode()).hexdigest()
    with pytest.raises(ValueError):
        dedup_suffix(key, 0)


def test_is_valid_name() -> None:
    assert is_valid_name("a")
    assert is_valid_name("é" * 127)
    for bad in ["", ".", "..", "a/b", "a\x00b", "é" * 128, "\ud800"]:
        assert not is_valid_name(bad)


# --------------------------------------------------------------------------- assign_names


def test_oldest_keeps_plain_name_others_get_suffix_from_own_id() -> None:
    names = assign_names(
        [
            req(ID_B, "Title", "2026-01-02"),
            req(ID_A, "Title", "2026-01-03"),
            req(ID_C, "Title", "2026-01-01"),
        ]
    )
    assert names == {ID_C: "Title", ID_B: "Title (8e1d2c3b)", ID_A: "Title (3f2a9c1b)"}


def test_file_suffix_goes_before_extension() -> None:
    names = assign_names(
        [
            req(ID_A, "photo.png", "2", True),
            req(ID_B, "photo.png", "1", True),
            req(ID_C, "backup.tar.gz", "3", True),
            req(uid(1), "backup.tar.gz", "1", True),
            req(uid(2), ".gitignore", "2", True),
            req(uid(3), ".gitignore", "1", True),
        ]
    )
    assert names[ID_B] == "photo.png"
    assert names[ID_A] == "photo (3f2a9c1b).png"
    assert names[ID_C] == "backup (c0ffee00).tar.gz"
    assert names[uid(2)] == f".gitignore ({dedup_suffix(uid(2))})"


def test_page_and_file_with_same_name_are_deduplicated() -> None:
    names = assign_names([req(ID_A, "a.png", "1"), req(ID_B, "a.png", "2", True)])
    assert names == {ID_A: "a.png", ID_B: "a (8e1d2c3b).png"}


def test_case_only_differences_are_duplicates() -> None:
    names = assign_names(
        [req(ID_A, "notes", "2"), req(ID_B, "Notes", "1"), req(ID_C, "NOTES", "3")]
    )
    assert names == {ID_B: "Notes", ID_A: "notes (3f2a9c1b)", ID_C: "NOTES (c0ffee00)"}


def test_names_equal_after_cleaning_are_duplicates() -> None:
    names = assign_names(
        [
            req(ID_A, "a/b", "1"),
            req(ID_B, "a／b ", "2"),
            req(ID_C, "", "3"),
            req(uid(1), "Untitled", "4"),
        ]
    )
    assert names[ID_B] == "a／b (8e1d2c3b)"
    assert names[ID_C] == "Untitled"
    assert names[uid(1)] == f"Untitled ({dedup_suffix(uid(1))})"


def test_older_real_title_that_looks_like_a_suffix_wins() -> None:
    names = assign_names(
        [req(ID_C, "Title (3f2a9c1b)", "0"), req(ID_B, "Title", "1"), req(ID_A, "Title", "2")]
    )
    assert names == {
        ID_C: "Title (3f2a9c1b)",
        ID_B: "Title",
        ID_A: "Title (3f2a9c1b0)",
    }


def test_newer_real_title_that_looks_like_a_suffix_gets_its_own_suffix() -> None:
    names = assign_names(
        [req(ID_C, "Title (3f2a9c1b)", "9"), req(ID_B, "Title", "1"), req(ID_A, "Title", "2")]
    )
    assert names == {
        ID_B: "Title",
        ID_A: "Title (3f2a9c1b)",
        ID_C: "Title (3f2a9c1b) (c0ffee00)",
    }


def test_shared_id_prefix_lengthens_suffix() -> None:
    a = "3f2a9c1b-0d4e-4c5f-8a6b-000000000001"
    b = "3f2a9c1b-0d4e-4c5f-8a6b-000000000002"
    names = assign_names([req(ID_C, "T", "0"), req(a, "T", "1"), req(b, "T", "2")])
    assert names == {ID_C: "T", a: "T (3f2a9c1b)", b: "T (3f2a9c1b0)"}


def test_reserved_names_are_never_handed_out() -> None:
    names = assign_names(
        [
            req(ID_A, "index.md", "1", True),
            req(ID_B, "INDEX.MD", "2", True),
            req(ID_C, "Page", "3"),
        ],
        reserved={"index.md", "Page (c0ffee00)"},
    )
    assert names[ID_A] == "index (3f2a9c1b).md"
    assert names[ID_B] == "INDEX (8e1d2c3b).MD"
    assert names[ID_C] == "Page"
    clash = assign_names(
        [req(ID_A, "Page", "2"), req(ID_B, "Page", "1")], reserved=["page (3f2a9c1b)"]
    )
    assert clash[ID_A] == "Page (3f2a9c1b0)"


def test_numbered_fallback_when_every_id_suffix_is_taken() -> None:
    source = ID_A.replace("-", "")
    reserved = ["T"] + [f"T ({source[:n]})" for n in range(8, 33)]
    assert assign_names([req(ID_A, "T", "1")], reserved) == {ID_A: f"T ({source}-2)"}


def test_long_duplicates_fit_and_keep_their_visible_prefix() -> None:
    title = "Ω" * 200
    names = assign_names([req(ID_A, title, "1"), req(ID_B, title, "2")])
    assert names[ID_B] == names[ID_A] + " (8e1d2c3b)"
    assert utf8_len(names[ID_B]) <= NAME_MAX_BYTES
    files = assign_names(
        [req(ID_A, "z" * 300 + ".png", "1", True), req(ID_B, "z" * 300 + ".png", "2", True)]
    )
    assert files[ID_B] == "z" * (CLEAN_NAME_MAX_BYTES - 4) + " (8e1d2c3b).png"
    assert utf8_len(files[ID_B]) == NAME_MAX_BYTES


def test_long_suffix_shortens_stem_to_fit() -> None:
    source = ID_A.replace("-", "")
    # each suffix length n leaves room for (255 - len(" ()") - n) // 2 two-byte characters
    reserved = ["é" * 122] + [f"{'é' * ((252 - n) // 2)} ({source[:n]})" for n in range(8, 20)]
    name = assign_names([req(ID_A, "é" * 122, "1")], reserved)[ID_A]
    assert name == "é" * 116 + f" ({source[:20]})"
    assert utf8_len(name) <= NAME_MAX_BYTES
    assert is_valid_name(name)


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        assign_names([req(ID_A, "a", "1"), req(ID_A, "b", "2")])


def test_five_thousand_duplicates() -> None:
    requests = [req(uid(i), "Meeting notes", f"{i:06d}") for i in range(5000)]
    names = assign_names(requests)
    assert names[uid(0)] == "Meeting notes"
    assert len({fold(n) for n in names.values()}) == 5000
    assert all(names[uid(i)] == f"Meeting notes ({dedup_suffix(uid(i))})" for i in range(1, 5000))


def test_thousands_of_keys_sharing_a_long_prefix() -> None:
    prefix = "3f2a9c1b-0d4e-4c5f-8a6b-0000"
    requests = [req(f"{prefix}{i:08x}", "Same", str(i)) for i in range(2000)]
    names = assign_names(requests)
    assert len(set(names.values())) == 2000
    assert all(is_valid_name(n) for n in names.values())


def test_removing_the_plain_holder_promotes_the_next_oldest_only() -> None:
    requests = [req(ID_C, "Title", "1"), req(ID_B, "Title", "2"), req(ID_A, "Title", "3")]
    before = assign_names(requests)
    after = assign_names(requests[1:])
    assert after == {ID_B: "Title", ID_A: before[ID_A]}


def test_renaming_one_entry_to_a_new_title_leaves_the_others() -> None:
    requests = [req(ID_C, "Title", "1"), req(ID_B, "Title", "2"), req(ID_A, "Other", "3")]
    before = assign_names(requests)
    after = assign_names(requests[:2] + [req(ID_A, "Brand new", "3")])
    assert after == {ID_C: before[ID_C], ID_B: before[ID_B], ID_A: "Brand new"}


# --------------------------------------------------------------------------- properties

HOSTILE = [
    "Title",
    "title",
    "TITLE",
    "Title (3f2a9c1b)",
    "",
    ".",
    "..",
    ".hidden",
    "a/b",
    "a／b",
    "photo.png",
    "PHOTO.PNG",
    "photo (3f2a9c1b).png",
    "x" * 300,
    "x" * 300 + ".png",
    "❤️" * 90,
    "🇫🇷" * 70,
    "trailing. ",
    "   ",
    "\x00",
    "\u202e",
    "Untitled",
]

raw_titles = st.one_of(st.text(), st.sampled_from(HOSTILE), st.text(alphabet="aA.x/ ", max_size=6))
keys = st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=12))
orders = st.text(alphabet="0123", max_size=3)
request_lists = st.lists(
    st.builds(NameRequest, key=keys, raw=raw_titles, order=orders, is_file=st.booleans()),
    max_size=30,
    unique_by=lambda r: r.key,
)
reserved_sets = st.lists(st.sampled_from(["index.md", "Title", "title (3f2a9c1b)", "Page"]))


@settings(max_examples=300, deadline=None)
@given(st.text(), st.booleans())
def test_clean_name_is_always_valid_and_idempotent(raw: str, is_file: bool) -> None:
    name = clean_name(raw, is_file=is_file)
    assert is_valid_name(name)
    assert utf8_len(name) <= CLEAN_NAME_MAX_BYTES
    assert name == name.strip()
    assert unicodedata.is_normalized("NFC", name)
    assert not any(
        unicodedata.category(ch) == "Cc"
        or ch in "\u202a\u202b\u202c\u202d\u202e\u200e\u200f"
        or "\u2066" <= ch <= "\u2069"
        for ch in name
    )
    if not is_file:
        assert not name.startswith(".") and not name.endswith(".")
    assert clean_name(name, is_file=is_file) == name


@settings(max_examples=200, deadline=None)
@given(request_lists, reserved_sets)
def test_assigned_names_are_valid_and_unique(
    requests: list[NameRequest], reserved: list[str]
) -> None:
    names = assign_names(requests, reserved)
    assert set(names) == {r.key for r in requests}
    assert all(is_valid_name(n) for n in names.values())
    folded = [fold(n) for n in names.values()]
    assert len(set(folded)) == len(folded)
    assert not set(folded) & {fold(r) for r in reserved}


@settings(max_examples=200, deadline=None)
@given(request_lists, st.randoms(use_true_random=False))
def test_assignment_ignores_input_order(requests: list[NameRequest], rnd: random.Random) -> None:
    shuffled = list(requests)
    rnd.shuffle(shuffled)
    assert assign_names(shuffled) == assign_names(requests)


@settings(max_examples=200, deadline=None)
@given(request_lists, raw_titles, st.booleans(), st.uuids().map(str))
def test_newer_request_renames_nothing(
    requests: list[NameRequest], raw: str, is_file: bool, key: str
) -> None:
    if any(r.key == key for r in requests):
        return
    newest = max((r.order for r in requests), default="") + "9"
    before = assign_names(requests)
    after = assign_names([*requests, NameRequest(key, raw, newest, is_file)])
    assert {k: after[k] for k in before} == before


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.uuids().map(str),
            st.one_of(st.text(), st.sampled_from(["photo", "x" * 300, "Ω" * 150])),
            st.sampled_from([".png", ".PDF", ".tar.gz", ".mp4", ".webm"]),
            orders,
        ),
        min_size=1,
        max_size=20,
        unique_by=lambda t: t[0],
    )
)
def test_file_extension_survives_cleaning_and_dedup(
    entries: list[tuple[str, str, str, str]],
) -> None:
    requests = [NameRequest(key, stem + ext, order, True) for key, stem, ext, order in entries]
    names = assign_names(requests)
    for request, (_, _, ext, _) in zip(requests, entries, strict=True):
        cleaned = clean_name(request.raw, is_file=True)
        kept = split_extension(cleaned)[1]
        if kept:
            assert names[request.key].endswith(kept)
        if cleaned.endswith(ext) and len(cleaned) > len(ext) and not cleaned.startswith("."):
            assert kept.endswith(ext)
