"""Rich text to inline Markdown: escaping, annotations, links, mentions, front matter quoting."""

from __future__ import annotations

import html
import re
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from notionfs.render import StaticLinks
from notionfs.render.frontmatter import front_matter, yaml_string
from notionfs.render.inline import (
    code_span,
    escape_text,
    link_destination,
    relative_link,
    render_rich_text,
)

ID_A = "11111111-2222-3333-4444-555555555555"
ID_B = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
LINKS = StaticLinks(children={ID_A: "Child%20page/"}, titles={ID_A: "Child page",
                                                                ID_B: "Far page"})
MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def text_run(content: str, href: str | None = None, **flags: bool) -> dict[str, Any]:
    annotations = {"bold": False, "italic": False, "strikethrough": False,
                   "underline": False, "code": False, "color": "default", **flags}
    return {"type": "text", "text": {"content": content, "link": {"url": href} if href else None},
            "annotations": annotations, "plain_text": content, "href": href}


def mention(kind: str, value: dict[str, Any], plain: str, href: str | None = None) -> dict:
    return {"type": "mention", "mention": {"type": kind, kind: value},
            "annotations": text_run("")["annotations"], "plain_text": plain, "href": href}


def inline(*runs: dict[str, Any], **options: Any) -> str:
    return render_rich_text(list(runs), LINKS, **options)


def rendered_text(markdown: str) -> str:
    """What a reader sees: the HTML's text, entities decoded."""
    out = MD.render(markdown)
    out = re.sub(r"<br />\n", "\n", out)
    return html.unescape(re.sub(r"<[^>]+>", "", out)).strip("\n")


# ---- escaping -------------------------------------------------------------------------------

PRINTABLE = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=60)


@given(PRINTABLE)
def test_any_plain_text_reads_back_as_itself(text: str) -> None:
    markdown = inline(text_run(text))
    html_out = MD.render(markdown)
    # No markup is created from text: only a paragraph (or nothing, for blank text).
    assert set(re.findall(r"<(\w+)", html_out)) <= {"p"}
    # A paragraph drops the white space at its ends (markdown-it-py strips as Python does);
    # every other character stays.
    assert rendered_text(markdown) == text.strip()


BLOCK_SYNTAX = st.sampled_from(
    list("a1 _*`[]()<>!#-+=|~$&;\\.:\n\t") + ["&amp;", "<b>", "1.", "2)", "- ", "```", "~~~",
                                             "    ", "---", "===", "- - -", "_ _ _", "«é»"])


@given(st.lists(BLOCK_SYNTAX, max_size=20).map("".join))
def test_line_breaks_are_kept_and_never_start_blocks(text: str) -> None:
    markdown = inline(text_run(text))
    tags = set(re.findall(r"<(\w+)", MD.render(markdown)))
    assert tags <= {"p", "br"}, markdown


def test_markdown_syntax_is_escaped_only_where_it_means_something() -> None:
    assert escape_text("snake_case and _emphasis_") == "snake_case and \\_emphasis\\_"
    assert escape_text("a < b, <b>") == "a < b, \\<b>"
    assert escape_text("Q&A &amp; &#38;") == "Q&A \\&amp; \\&#38;"
    assert escape_text("*[x](y)* `c` ~s~ $5 \\") == "\\*\\[x\\](y)\\* \\`c\\` \\~s\\~ \\$5 \\\\"
    assert inline(text_run("# title")) == "\\# title"
    assert inline(text_run("2026. A year")) == "2026\\. A year"
    assert inline(text_run("a\n- b\n> c")) == "a\\\n\\- b\\\n\\> c"


def test_trailing_line_breaks_are_dropped() -> None:
    assert inline(text_run("text\n\n")) == "text"


# ---- annotations and links ------------------------------------------------------------------


def test_annotations() -> None:
    assert inline(text_run("b", bold=True)) == "**b**"
    assert inline(text_run("i", italic=True)) == "*i*"
    assert inline(text_run("s", strikethrough=True)) == "~~s~~"
    assert inline(text_run("u", underline=True)) == "<u>u</u>"
    assert inline(text_run("c", code=True)) == "`c`"
    assert inline(text_run("all", bold=True, italic=True, strikethrough=True)) == "***~~all~~***"
    assert inline(text_run("red", color="red")) == "red"


def test_whitespace_stays_outside_markers_and_equal_runs_merge() -> None:
    assert inline(text_run("a "), text_run(" bold ", bold=True), text_run("c")) == "a  **bold** c"
    assert inline(text_run("one", bold=True), text_run(" two", bold=True)) == "**one two**"
    html_out = MD.render(inline(text_run("x"), text_run(" y ", bold=True), text_run("z")))
    assert "<strong>y</strong>" in html_out


def test_markers_that_would_not_flank_become_html() -> None:
    # "a**`x`**" is no emphasis in CommonMark: a marker between a letter and punctuation.
    assert inline(text_run("a"), text_run("x", bold=True, code=True)) == "a<strong>`x`</strong>"
    assert inline(text_run("a "), text_run("x", bold=True, code=True)) == "a **`x`**"
    assert inline(text_run("a", italic=True), text_run("b", italic=True, code=True)) == (
        "<em>a</em>*`b`*")


SYNTAX = st.sampled_from(list("ab1 _*`[]()<>!#-+=|~$&;\\.:") + ["&amp;", "<b>", "1.", "- "])
STYLED_RUN = st.builds(
    lambda text, bold, italic, strike, code, underline, href: text_run(
        text, href=href, bold=bold, italic=italic, strikethrough=strike, code=code,
        underline=underline),
    st.lists(SYNTAX, min_size=1, max_size=8).map("".join), st.booleans(), st.booleans(),
    st.booleans(), st.booleans(), st.booleans(), st.sampled_from([None, "https://x.test/a b"]),
)


@given(st.lists(STYLED_RUN, min_size=1, max_size=5))
def test_styled_runs_read_back_with_their_styles_only(runs: list[dict[str, Any]]) -> None:
    markdown = inline(*runs)
    html_out = MD.render(markdown)
    assert set(re.findall(r"<(\w+)", html_out)) <= {"p", "strong", "em", "s", "code", "u", "a"}
    seen = html.unescape(re.sub(r"<[^>]+>", "", html_out))
    assert re.sub(r"\s+", "", seen) == re.sub(r"\s+", "", "".join(
        run["text"]["content"] for run in runs))


def test_linked_code_with_a_bracket_never_reads_as_a_reference_definition() -> None:
    # Found by Hypothesis: "[`]:`](...)" at a line start parsed as a link reference
    # definition, and the line's text vanished.
    for text in ("]:", "a]: b", "[x]"):
        markdown = inline(text_run(text, href="https://x.test/a b", code=True))
        html_out = MD.render(markdown)
        assert f"<code>{html.escape(text, quote=False)}</code>" in html_out, html_out
        assert '<a href="https://x.test/a%20b">' in html_out


def test_code_spans_outgrow_backticks_inside() -> None:
    assert code_span("a`b") == "``a`b``"
    assert code_span("`edge`") == "`` `edge` ``"
    assert "<code>`edge`</code>" in MD.render(code_span("`edge`"))
    assert inline(text_run("*not bold*", code=True)) == "`*not bold*`"


def test_links_and_unsafe_destinations() -> None:
    assert inline(text_run("site", href="https://example.com/a b(c)")) == (
        "[site](https://example.com/a%20b%28c%29)")
    assert link_destination("https://x.test/?q=1&r=%20") == "https://x.test/?q=1&r=%20"
    assert relative_link("A page (2) 🎉", directory=True) == "A%20page%20%282%29%20%F0%9F%8E%89/"


def test_links_to_notion_pages_become_relative_when_the_folder_holds_them() -> None:
    hex_a = ID_A.replace("-", "")
    # A page link opens the page's text; a database view link (?v=) its folder.
    assert inline(text_run("see", href=f"/{hex_a}")) == "[see](Child%20page/index.md)"
    assert inline(text_run("see", href=f"https://www.notion.so/Some-Title-{hex_a}")) == (
        "[see](Child%20page/index.md)")
    assert inline(text_run("see", href=f"https://app.notion.com/p/Some-Title-{hex_a}?pvs=4")) == (
        "[see](Child%20page/index.md)")
    assert inline(text_run("see", href=f"https://app.notion.com/p/{hex_a}?v={'1' * 32}")) == (
        "[see](Child%20page/)")
    hex_b = ID_B.replace("-", "")
    assert inline(text_run("far", href=f"/{hex_b}")) == (
        f"[far](https://www.notion.so/{hex_b})")


def test_mentions() -> None:
    page = mention("page", {"id": ID_A}, "Old title", "https://www.notion.so/x")
    assert inline(page) == "[Child page](Child%20page/index.md)"
    near_database = mention("database", {"id": ID_A}, "Table")
    assert inline(near_database) == "[Child page](Child%20page/)"  # a folder of rows
    far = mention("database", {"id": ID_B}, "Far")
    assert inline(far) == f"[Far page](https://www.notion.so/{ID_B.replace('-', '')})"
    user = mention("user", {"object": "user", "id": ID_B, "name": "Ada"}, "@Ada")
    assert inline(user) == "@Ada"
    day = mention("date", {"start": "2026-01-05", "end": "2026-01-07", "time_zone": None}, "")
    assert inline(day) == "2026-01-05 → 2026-01-07"
    preview = mention("link_preview", {"url": "https://github.com/x"}, "https://github.com/x")
    assert inline(preview) == "[https://github.com/x](https://github.com/x)"


def test_inline_equations() -> None:
    equation = {"type": "equation", "equation": {"expression": " x^2 "},
                "annotations": text_run("")["annotations"], "plain_text": "x^2", "href": None}
    assert inline(text_run("so "), equation, text_run(".")) == "so $x^2$."


def test_cell_and_heading_modes() -> None:
    assert inline(text_run("a\nb"), newline="<br>") == "a<br>b"
    assert inline(text_run("a\n# b"), newline=" ") == "a # b"


# ---- front matter ---------------------------------------------------------------------------


@given(st.text(max_size=40))
def test_any_string_survives_yaml(text: str) -> None:
    loaded = yaml.safe_load(f"key: {yaml_string(text)}\n")
    assert loaded == {"key": text}


def test_front_matter_quotes_only_what_needs_it() -> None:
    assert yaml_string("Plain title") == "Plain title"
    for tricky in ("yes", "No", "null", "- dash", "# hash", "a: b", "'q'", '"q"', "1.5",
                   "trailing ", "", "x\ny", "🎉", "[list]", "{map}", "*alias", "&anchor"):
        assert yaml_string(tricky).startswith('"'), tricky
    text = front_matter([("title", "Q&A: yes/no?"), ("properties", {"Due: date": "- soon"})])
    assert yaml.safe_load(text.strip("-\n")) == {
        "title": "Q&A: yes/no?", "properties": {"Due: date": "- soon"}}


def test_an_exclamation_mark_before_a_link_stays_text() -> None:
    """"!" then a linked run must not read back as an image (found by Hypothesis)."""
    runs = [text_run("!"), text_run("a", href="https://example.com/")]
    text = render_rich_text(runs, StaticLinks())
    tokens = MarkdownIt().parseInline(text)[0].children or []
    assert [t.type for t in tokens if t.type in ("image", "link_open")] == ["link_open"]
    assert "".join(t.content for t in tokens if t.type == "text") == "!a"
