"""Notion rich text as inline Markdown: annotations, links, mentions, equations, escaping."""

from __future__ import annotations

import html
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from notionfs.models import normalize_id

__all__ = [
    "Links",
    "HARD_BREAK",
    "render_rich_text",
    "plain_rich_text",
    "escape_text",
    "escape_line_starts",
    "code_span",
    "link_destination",
    "notion_url",
    "notion_link_id",
    "page_text_link",
    "PAGE_TEXT",
    "date_text",
    "relative_link",
]

logger = logging.getLogger(__name__)

# A backslash at the end of a line is a hard line break (CommonMark 6.7): a Notion line
# break inside a paragraph stays a line break.
HARD_BREAK = "\\\n"


class Links(Protocol):
    """Where the things a page refers to live, as seen from the folder of its index.md."""

    def child(self, object_id: str) -> str | None:
        """Relative, percent-encoded path of a child page/database folder ("Child%20page/")."""

    def file(self, block_id: str) -> str | None:
        """Relative, percent-encoded path of a file block's file beside index.md."""

    def page_url(self, object_id: str) -> str:
        """The notion.so link for an object outside this folder."""

    def title(self, object_id: str) -> str | None:
        """A known title (or user name) for an id, for mentions and link_to_page."""


def notion_url(object_id: str) -> str:
    """https://www.notion.so/<id without dashes>: Notion resolves it to the object."""
    return "https://www.notion.so/" + normalize_id(object_id).replace("-", "")


# The file that holds a page folder's text: links to a page point at it, so a Markdown
# viewer opens the page rather than a folder listing.
PAGE_TEXT = "index.md"


def page_text_link(folder: str) -> str:
    """A link to a page's folder ("Child%20page/") as a link to its text
    ("Child%20page/index.md"); anything else (already a file) unchanged."""
    return folder + PAGE_TEXT if folder.endswith("/") else folder


def relative_link(name: str, *, directory: bool) -> str:
    """A file or folder name beside index.md as a link destination ("My%20page/")."""
    return quote(name, safe="") + ("/" if directory else "")


# ---- escaping ------------------------------------------------------------------------------

# Always escaped: they open emphasis, code, links, strikethrough (GFM) or math (many viewers).
_ALWAYS = re.compile(r"[\\`*\[\]~$]")
# "_" only where it can open or close emphasis: not between two letters or digits.
_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
# "<" only where it could start an HTML tag, a comment or an autolink.
_ANGLE = re.compile(r"<(?=[A-Za-z/!?])")
# "&" only where it would read as an entity (&amp; &#38; &#x26;).
_ENTITY = re.compile(r"&(?=#[0-9]{1,7};|#[xX][0-9A-Fa-f]{1,6};|[A-Za-z][A-Za-z0-9]{1,31};)")
# Line starts that would make a block (CommonMark 4 and 5): a heading ("# "), a quote (">"),
# a list item ("- ", "+ ", "1. ", "1) "), a setext underline or thematic break (a line of
# "-" or "="), a table row ("|"). The first character of each is escaped.
_LINE_START = re.compile(
    r"^(?:#{1,6}(?=[ \t]|$)|>|[+\-](?=[ \t]|$)|(?:-[ \t]*)+$|=+[ \t]*$|\|)"
    r"|^(?P<digits>\d{1,9})(?=[.)](?:[ \t]|$))",
    re.MULTILINE,
)


def escape_text(text: str) -> str:
    """Plain text that Markdown shows as itself (inline: line starts are handled apart)."""
    text = _ALWAYS.sub(lambda m: "\\" + m.group(), text)
    text = _UNDERSCORE.sub(r"\\_", text)
    text = _ANGLE.sub(r"\\<", text)
    return _ENTITY.sub(r"\\&", text)


def escape_line_starts(text: str) -> str:
    """Escape what would turn each line into a block (heading, list item, quote...)."""
    lines = [line.lstrip(" \t") for line in text.split("\n")]
    return _LINE_START.sub(_escape_start, "\n".join(lines))


def _escape_start(match: re.Match[str]) -> str:
    if match.group("digits") is not None:
        return match.group() + "\\"  # "1." -> "1\.": the delimiter is what makes the list
    return "\\" + match.group()


def code_span(text: str) -> str:
    """Inline code with a backtick fence longer than any backtick run inside."""
    text = text.replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    if text.startswith("`") or text.endswith("`") or (
        text.startswith(" ") and text.endswith(" ") and text.strip()
    ):
        # One space each side is stripped by the parser (CommonMark 6.1).
        text = f" {text} "
    return f"{fence}{text}{fence}" if text else ""


def link_destination(url: str) -> str:
    """A URL safe as a Markdown link destination: no spaces, brackets or angle quotes."""
    return quote(url, safe="/:?#[]@!$&'*+,;=%~-._")


# ---- dates ---------------------------------------------------------------------------------


def date_text(date: Mapping[str, Any] | None) -> str:
    """A Notion date object as "start", "start → end", with " (time zone)" when given."""
    if not date:
        return ""
    text = str(date.get("start") or "")
    if date.get("end"):
        text += f" → {date['end']}"
    if date.get("time_zone"):
        text += f" ({date['time_zone']})"
    return text


# ---- rich text -----------------------------------------------------------------------------

# A link to a Notion page or database, as Notion writes them: www.notion.so/<slug>-<id> and
# www.notion.so/<workspace>/<slug>-<id> (to 2025), app.notion.com/p/<slug>-<id> (2026), the
# bare id in place of <slug>-<id>, a path of just "/<id>" inside Notion, and any ?query
# (?v=<view> names a database view, ?pvs=4 a share) or #fragment (a block) after it.
_NOTION_PAGE_LINK = re.compile(
    r"^(?:https?://(?:www\.|app\.)?notion\.(?:so|com)/(?:[^/?#]*/)*(?:[^/?#]*-)?|/)"
    r"(?P<id>[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})/?"
    r"(?P<rest>[?#].*)?$"
)
# "?v=<view id>": a link to a database (one of its views), never to a page.
_VIEW_QUERY = re.compile(r"^\?(?:[^#]*&)?v=")


def notion_link_id(url: str) -> str | None:
    """The id of the page or database a Notion link points at, or None for other links."""
    found = _NOTION_PAGE_LINK.match(url)
    return None if found is None else normalize_id(found.group("id"))


@dataclass(frozen=True)
class _Style:
    bold: bool = False
    italic: bool = False
    strikethrough: bool = False
    underline: bool = False
    code: bool = False


@dataclass(frozen=True)
class _Segment:
    """One stretch of rich text with one style and one link target."""

    text: str  # plain text, or the Markdown of an equation when raw
    style: _Style
    href: str | None
    raw: bool = False  # already Markdown (inline equations): never escaped or merged


def _style(run: Mapping[str, Any]) -> _Style:
    ann = run.get("annotations") or {}
    return _Style(
        bold=bool(ann.get("bold")),
        italic=bool(ann.get("italic")),
        strikethrough=bool(ann.get("strikethrough")),
        underline=bool(ann.get("underline")),
        code=bool(ann.get("code")),
    )


def _mention_segment(run: Mapping[str, Any], style: _Style, links: Links) -> _Segment:
    mention = run.get("mention") or {}
    kind = mention.get("type")
    plain = str(run.get("plain_text") or "")
    value = mention.get(kind) if isinstance(kind, str) else None
    value = value if isinstance(value, Mapping) else {}
    if kind in ("page", "database") and isinstance(value.get("id"), str):
        target = normalize_id(value["id"])
        title = links.title(target) or plain or "Untitled"
        folder = links.child(target)
        if folder is not None and kind == "page":
            folder = page_text_link(folder)
        return _Segment(title, style, folder or links.page_url(target))
    if kind == "user":
        name = value.get("name")
        return _Segment(plain or (f"@{name}" if name else "@someone"), style, None)
    if kind == "date":
        return _Segment(plain or date_text(value), style, None)
    if kind == "link_preview":
        url = str(value.get("url") or run.get("href") or plain)
        return _Segment(plain or url, style, url or None)
    if kind == "link_mention":
        url = str(value.get("href") or run.get("href") or "")
        return _Segment(str(value.get("title") or plain or url), style, url or None)
    return _Segment(plain, style, run.get("href"))


def _segment(run: Mapping[str, Any], links: Links) -> _Segment:
    style = _style(run)
    kind = run.get("type")
    if kind == "equation":
        expression = str((run.get("equation") or {}).get("expression") or run.get("plain_text"))
        expression = expression.strip().replace("$", "\\$").replace("\n", " ")
        return _Segment(f"${expression}$" if expression else "", style, None, raw=True)
    if kind == "mention":
        return _mention_segment(run, style, links)
    text_obj = run.get("text") or {}
    text = text_obj.get("content") if isinstance(text_obj, Mapping) else None
    link = text_obj.get("link") if isinstance(text_obj, Mapping) else None
    href = link.get("url") if isinstance(link, Mapping) else None
    return _Segment(
        str(text if text is not None else run.get("plain_text") or ""),
        style,
        _resolve_href(str(href or run.get("href") or ""), links) or None,
    )


def _resolve_href(href: str, links: Links) -> str:
    """Links to Notion pages point at their index.md, to databases at their folder, when
    the mount holds them (``links.child``); other Notion links at the object's URL."""
    found = _NOTION_PAGE_LINK.match(href)
    if found is None:
        return href
    target = normalize_id(found.group("id"))
    folder = links.child(target)
    if folder is None:
        return links.page_url(target)
    is_view = _VIEW_QUERY.match(found.group("rest") or "") is not None
    return folder if is_view else page_text_link(folder)


def _merged(segments: Sequence[_Segment]) -> list[_Segment]:
    """Neighbouring runs with one style and link are one run (no "**a****b**")."""
    out: list[_Segment] = []
    for seg in segments:
        if not seg.text:
            continue
        last = out[-1] if out else None
        if (last is not None and not last.raw and not seg.raw and last.style == seg.style
                and last.href == seg.href):
            out[-1] = _Segment(last.text + seg.text, seg.style, seg.href)
        else:
            out.append(seg)
    return out


_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
# (Markdown opener, closer, HTML open tag, HTML close tag), innermost first.
_MARKERS = (
    ("strikethrough", "~~", "<s>", "</s>"),
    ("italic", "*", "<em>", "</em>"),
    ("bold", "**", "<strong>", "</strong>"),
)


def _punctuation(char: str, *, symbols: bool) -> bool:
    if char in _ASCII_PUNCTUATION:
        return True
    category = unicodedata.category(char) if char else "Zs"
    return category.startswith("P") or (symbols and category.startswith("S"))


def _loose(char: str) -> bool:
    """Whether an emphasis marker beside ``char`` (on its outside) always flanks."""
    return not char or char.isspace() or _punctuation(char, symbols=False)


def _emphasis(body: str, style: _Style, before: str, after: str) -> str:
    """``body`` with its emphasis: Markdown markers where they flank (CommonMark 6.2: a
    marker between a letter and punctuation opens or closes nothing), else HTML tags."""
    layers = [m for m in _MARKERS if getattr(style, m[0])]
    if not layers:
        return body
    inner = body
    for _, marker, _, _ in layers[:-1]:
        inner = f"{marker}{inner}{marker}"
    outer = layers[-1][1][0]
    # A marker right beside another of its kind would merge into one delimiter run.
    opens_ok = before != outer and (_loose(before) or not _punctuation(inner[0], symbols=True))
    closes_ok = after != outer and (_loose(after) or not _punctuation(inner[-1], symbols=True))
    for _, marker, open_tag, close_tag in layers:
        if opens_ok and closes_ok:
            body = f"{marker}{body}{marker}"
        else:
            body = f"{open_tag}{body}{close_tag}"
    return body


def _first_char(seg: _Segment | None) -> str:
    """The first character a segment will be written with ("" at the end of the text)."""
    if seg is None:
        return ""
    text = seg.text
    if seg.raw or not text.strip() or text[0].isspace():
        return text[:1]
    style = seg.style
    if seg.href:
        return "["
    if style.underline:
        return "<"
    if style.bold or style.italic:
        return "*"  # or "<" if it falls back to tags: punctuation either way
    if style.strikethrough:
        return "~"
    return "`" if style.code else escape_text(text.strip())[:1]


def _styled_all(segments: Sequence[_Segment]) -> str:
    """Segments as Markdown; whitespace at their ends stays outside the markers, since
    "** bold**" is not bold. Line breaks stay "\\n"."""
    out = ""
    for index, seg in enumerate(segments):
        text = seg.text if seg.raw else seg.text.replace("\r\n", "\n").replace("\r", "\n")
        core = text.strip()
        if seg.raw or not core:
            out += text
            continue
        lead = text[: len(text) - len(text.lstrip())]
        trail = text[len(text.rstrip()):]
        if seg.style.code and seg.href and ("[" in core or "]" in core):
            # A bracket in a code span inside link text can end the label a line-start
            # "[...]:" reads as a link reference definition (the whole line then vanishes):
            # as HTML code its brackets stay escaped.
            body = f"<code>{escape_text(core)}</code>"
        else:
            body = code_span(core) if seg.style.code else escape_text(core)
        following = segments[index + 1] if index + 1 < len(segments) else None
        if seg.href:
            # Inside link brackets the markers always flank.
            body = _emphasis(body, seg.style, " ", " ")
        else:
            body = _emphasis(body, seg.style, (out + lead)[-1:], trail[:1] or
                             _first_char(following))
        if seg.style.underline:
            body = f"<u>{body}</u>"
        if seg.href:
            body = f"[{body}]({link_destination(seg.href)})"
            if not lead and out.endswith("!") and not out.endswith("\\!"):
                out = out[:-1] + "\\!"  # "!" right before "[...](...)" would make an image
        out += lead + body + trail
    return out


def render_rich_text(
    runs: Sequence[Mapping[str, Any]] | None, links: Links, *, newline: str = HARD_BREAK
) -> str:
    """Rich text as inline Markdown.

    Line breaks become ``newline``: a hard break by default, "<br>" in table cells, " " in
    headings. Whatever would make a line start a block (heading, list item...) is escaped.
    """
    segments = [_segment(run, links) for run in runs or () if isinstance(run, Mapping)]
    lines = _styled_all(_merged(segments)).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()  # a hard break cannot end a paragraph
    if newline == HARD_BREAK:
        return HARD_BREAK.join(escape_line_starts(line) for line in lines)
    return escape_line_starts(newline.join(line.strip() for line in lines))


def plain_rich_text(runs: Sequence[Mapping[str, Any]] | None) -> str:
    """The plain text of rich text (the API's own ``plain_text`` of each run)."""
    return "".join(str(run.get("plain_text") or "") for run in runs or ()
                   if isinstance(run, Mapping))


def html_text(runs: Sequence[Mapping[str, Any]] | None) -> str:
    """Rich text as HTML-escaped plain text, on one line (for <summary>)."""
    return html.escape(" ".join(plain_rich_text(runs).split()), quote=False)


def caption_of(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    caption = payload.get("caption")
    return [run for run in caption if isinstance(run, Mapping)] if isinstance(caption, list) else []

