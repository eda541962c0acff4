"""Blocks to Markdown: lists, containers, code, tables, files and links, read by markdown-it."""

from __future__ import annotations

import itertools
import re
from typing import Any

import yaml
from markdown_it import MarkdownIt

from notionfs.models import Block, Page, parse_block, parse_page
from notionfs.render import BlockNode, StaticLinks, collect_nodes, render_page
from notionfs.render.markdown import render_blocks

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_ids = itertools.count(1)


def new_id() -> str:
    return f"{next(_ids):08x}-0000-4000-8000-000000000000"


def rt(text: str, **flags: Any) -> list[dict[str, Any]]:
    annotations = {"bold": False, "italic": False, "strikethrough": False,
                   "underline": False, "code": False, "color": "default", **flags}
    return [{"type": "text", "text": {"content": text, "link": None},
             "annotations": annotations, "plain_text": text, "href": None}]


def block(kind: str, payload: dict[str, Any] | None = None, *children: BlockNode,
          block_id: str | None = None) -> BlockNode:
    raw = {
        "object": "block", "id": block_id or new_id(), "type": kind,
        kind: payload if payload is not None else {},
        "has_children": bool(children), "created_time": "2026-01-05T09:30:00.000Z",
        "last_edited_time": "2026-01-05T09:30:00.000Z", "in_trash": False,
        "parent": {"type": "page_id", "page_id": "ffffffff-0000-4000-8000-000000000000"},
    }
    return BlockNode(parse_block(raw), tuple(children))


def text_block(kind: str, text: str, *children: BlockNode, **extra: Any) -> BlockNode:
    return block(kind, {"rich_text": rt(text), "color": "default", **extra}, *children)


def para(text: str, *children: BlockNode) -> BlockNode:
    return text_block("paragraph", text, *children)


def bullet(text: str, *children: BlockNode) -> BlockNode:
    return text_block("bulleted_list_item", text, *children)


def numbered(text: str, *children: BlockNode) -> BlockNode:
    return text_block("numbered_list_item", text, *children)


def todo(text: str, checked: bool = False, *children: BlockNode) -> BlockNode:
    return text_block("to_do", text, *children, checked=checked)


def file_block(kind: str, name: str, url: str, *, external: bool = False,
               caption: str = "", block_id: str | None = None) -> BlockNode:
    payload: dict[str, Any] = {"caption": rt(caption) if caption else [], "name": name}
    if external:
        payload.update(type="external", external={"url": url})
    else:
        payload.update(type="file", file={"url": url, "expiry_time": "2026-01-05T10:30:00.000Z"})
    return block(kind, payload, block_id=block_id)


LINKS = StaticLinks()


def md(*nodes: BlockNode, links: StaticLinks = LINKS) -> str:
    return render_blocks(nodes, links)


def html(*nodes: BlockNode, links: StaticLinks = LINKS) -> str:
    return MD.render(md(*nodes, links=links))


# ---- lists ------------------------------------------------------------------------------------


def test_numbering_restarts_after_any_other_block() -> None:
    out = md(numbered("a"), numbered("b"), para("break"), numbered("c"), bullet("x"),
             numbered("d"))
    assert out == "1. a\n2. b\n\nbreak\n\n1. c\n\n- x\n\n1. d"


def test_blocks_that_render_to_nothing_do_not_break_a_list() -> None:
    toc = block("table_of_contents", {"color": "default"})
    assert md(numbered("a"), numbered("b"), toc, numbered("c")) == "1. a\n2. b\n3. c"


def test_nested_lists_indent_under_their_text() -> None:
    out = md(numbered("one", bullet("inner", numbered("deep"))), numbered("two"))
    assert out == "1. one\n   - inner\n     1. deep\n2. two"
    rendered = MD.render(out)
    assert rendered.count("<ol>") == 2 and rendered.count("<ul>") == 1
    assert rendered.index("deep") < rendered.index("two")


def test_ten_items_indent_by_their_marker_width() -> None:
    items = [numbered(str(i)) for i in range(1, 10)] + [numbered("10", bullet("under ten"))]
    out = md(*items)
    assert out.endswith("10. 10\n    - under ten")
    assert "<li>10\n<ul>\n<li>under ten</li>" in MD.render(out)


def test_to_dos_are_task_list_items() -> None:
    out = md(todo("done", True), todo("open", False, todo("nested")))
    assert out == "- [x] done\n- [ ] open\n  - [ ] nested"


def test_a_paragraph_under_an_item_stays_in_the_item() -> None:
    out = md(bullet("item", para("under it")), bullet("next"))
    assert out == "- item\n\n  under it\n- next"
    rendered = MD.render(out)
    assert re.search(r"<li>\s*<p>item</p>\s*<p>under it</p>\s*</li>", rendered)


def test_item_without_text_keeps_its_children() -> None:
    out = md(bullet("", bullet("child")))
    assert "<li>\n<ul>\n<li>child</li>" in MD.render(out)


# ---- containers -------------------------------------------------------------------------------


def test_toggles_are_details_with_markdown_inside() -> None:
    toggle = text_block("toggle", "More <info> & such", para("**inside**"), bullet("x"))
    out = md(toggle)
    assert out.startswith("<details>\n<summary>More &lt;info&gt; &amp; such</summary>\n\n")
    assert out.endswith("\n\n</details>")
    rendered = MD.render(out)
    assert "<p>**inside**</p>" in rendered and "<li>x</li>" in rendered
    assert md(text_block("toggle", "empty")) == (
        "<details>\n<summary>empty</summary>\n</details>")


def test_toggles_nest_in_list_items() -> None:
    out = md(bullet("item", text_block("toggle", "t", para("deep"))))
    rendered = MD.render(out)
    assert "<details>" in rendered and "<p>deep</p>" in rendered


def test_quotes_and_callouts_hold_their_children() -> None:
    quote = text_block("quote", "line one\nline two", para("child"))
    assert md(quote) == "> line one\\\n> line two\n>\n> child"
    callout = block("callout", {"rich_text": rt("Note"), "icon": {"type": "emoji", "emoji": "💡"},
                                "color": "default"}, bullet("point"))
    assert md(callout) == "> 💡 Note\n>\n> - point"
    rendered = MD.render(md(callout))
    assert "<blockquote>" in rendered and "<li>point</li>" in rendered


def test_headings_shift_below_the_page_title() -> None:
    out = md(text_block("heading_1", "One"), text_block("heading_3", "Three #"))
    assert out == "## One\n\n#### Three \\#"
    toggled = text_block("heading_2", "T", para("under"), is_toggleable=True)
    assert md(toggled) == "### T\n\nunder"


def test_columns_and_synced_blocks_show_their_content_in_order() -> None:
    columns = block("column_list", {}, block("column", {}, para("left")),
                    block("column", {}, para("right")))
    synced = block("synced_block", {"synced_from": {"type": "block_id",
                                                    "block_id": new_id()}}, para("copied"))
    assert md(columns, synced) == "left\n\nright\n\ncopied"


# ---- code, equations, tables ----------------------------------------------------------------


def test_code_fences_outgrow_backticks_and_map_languages() -> None:
    code = block("code", {"rich_text": rt("a\n````\nb"), "caption": rt("cap"),
                          "language": "c++"})
    out = md(code)
    assert out == "`````cpp\na\n````\nb\n`````\n\ncap"
    assert '<code class="language-cpp">a\n````\nb\n</code>' in MD.render(out)
    plain = block("code", {"rich_text": rt("x"), "caption": [], "language": "plain text"})
    assert md(plain) == "```text\nx\n```"


def test_equation_blocks() -> None:
    assert md(block("equation", {"expression": "e = mc^2"})) == "$$\ne = mc^2\n$$"


def test_tables_with_and_without_headers() -> None:
    def row(*cells: str) -> BlockNode:
        return block("table_row", {"cells": [rt(c) for c in cells]})

    table = block("table", {"table_width": 2, "has_column_header": True,
                            "has_row_header": False}, row("h|1", "h2"), row("a\nb", ""))
    out = md(table)
    assert out == "| h\\|1 | h2 |\n| --- | --- |\n| a<br>b |  |"
    rendered = MD.render(out)
    assert "<th>h|1</th>" in rendered and "<td>a<br>b</td>" in rendered
    headless = block("table", {"table_width": 3, "has_column_header": False,
                               "has_row_header": True}, row("k", "v"))
    assert md(headless) == "|  |  |  |\n| --- | --- | --- |\n| **k** | v |  |"


def test_dividers_and_omitted_blocks() -> None:
    out = md(para("a"), block("divider"), block("table_of_contents", {"color": "default"}),
             block("breadcrumb"), para("b"))
    assert out == "a\n\n---\n\nb"
    assert "<hr />" in MD.render(out)


def test_unknown_blocks_leave_a_comment_and_their_text() -> None:
    out = md(block("unsupported"), text_block("ai_block--x", "some text"))
    assert out == "<!-- unsupported block: not shown -->\n\n<!-- ai_blockx block: not shown -->" \
        "\n\nsome text"
    rendered = MD.render(out)
    assert "<p>some text</p>" in rendered


# ---- files and links ---------------------------------------------------------------------------

SIGNED = "https://files.test/secret/photo.png?X-Amz-Signature=abc&X-Amz-Expires=3600"


def test_files_link_to_their_file_beside_index_md() -> None:
    image = file_block("image", "photo (1).png", SIGNED, caption="A photo")
    pdf = file_block("pdf", "doc.pdf", SIGNED.replace("photo.png", "doc.pdf"),
                     caption="The doc")
    links = StaticLinks(files={image.block.id: "photo%20%281%29.png",
                               pdf.block.id: "doc.pdf"})
    out = md(image, pdf, links=links)
    assert out == "![A photo](photo%20%281%29.png)\n\n[doc.pdf](doc.pdf) — The doc"
    rendered = MD.render(out)
    assert '<img src="photo%20%281%29.png" alt="A photo" />' in rendered


def test_signed_urls_are_never_written() -> None:
    hosted = file_block("image", "photo.png", SIGNED, caption="Caption only")
    quiet = file_block("file", "x.bin", SIGNED)
    out = md(hosted, quiet)
    assert out == "Caption only"
    assert "X-Amz" not in out


def test_external_files_not_in_the_folder_link_to_their_url() -> None:
    video = file_block("video", "", "https://video.test/watch?v=1", external=True)
    assert md(video) == "[watch](https://video.test/watch?v=1)"


def test_child_pages_link_to_their_folders() -> None:
    child_id, far_id, table_id = new_id(), new_id(), new_id()
    child = block("child_page", {"title": "Notes (draft) #1"}, block_id=child_id)
    table = block("child_database", {"title": "Trips"}, block_id=table_id)
    links = StaticLinks(children={child_id: "Notes%20%28draft%29%20%231/", table_id: "Trips/"},
                        titles={far_id: "Far away"})
    to_child = block("link_to_page", {"type": "page_id", "page_id": child_id})
    to_table = block("link_to_page", {"type": "database_id", "database_id": table_id})
    to_far = block("link_to_page", {"type": "database_id", "database_id": far_id})
    to_comment = block("link_to_page", {"type": "comment_id", "comment_id": new_id()})
    out = md(child, table, to_child, to_table, to_far, to_comment, links=links)
    far_hex = far_id.replace("-", "")
    # A page opens at its text (index.md); a database folder holds rows, not an index.md.
    assert out == ("[Notes (draft) #1](Notes%20%28draft%29%20%231/index.md)\n\n"
                   "[Trips](Trips/)\n\n"
                   "[Notes (draft) #1](Notes%20%28draft%29%20%231/index.md)\n\n"
                   "[Trips](Trips/)\n\n"
                   f"[Far away](https://www.notion.so/{far_hex})")


def test_bookmarks_embeds_and_previews_are_links() -> None:
    bookmark = block("bookmark", {"url": "https://a.test/x y", "caption": rt("A site")})
    embed = block("embed", {"url": "https://b.test/", "caption": []})
    out = md(bookmark, embed)
    assert out == "[A site](https://a.test/x%20y)\n\n[https://b.test/](https://b.test/)"


# ---- the page ----------------------------------------------------------------------------------


def page(title: str, **extra: Any) -> Page:
    return parse_page({
        "object": "page", "id": "12345678-aaaa-4bbb-8ccc-1234567890ab",
        "created_time": "2026-01-05T09:30:00.000Z", "last_edited_time": "2026-02-01T12:00:00.000Z",
        "in_trash": False, "url": "https://www.notion.so/x-12345678aaaa4bbb8ccc1234567890ab",
        "parent": {"type": "workspace", "workspace": True},
        "properties": {"title": {"id": "title", "type": "title", "title": rt(title)}},
        "icon": {"type": "emoji", "emoji": "🧭"}, "cover": None, **extra,
    })


def test_page_has_front_matter_title_cover_and_body() -> None:
    text = render_page(page("Q&A: yes/no? #1"), [para("Body.")], LINKS,
                       properties={"Status": "Done", "Due: when": "- soon"},
                       cover="cover%20photo.jpg")
    head, body = text[4:].split("\n---\n", 1)
    assert yaml.safe_load(head) == {
        "title": "Q&A: yes/no? #1", "id": "12345678-aaaa-4bbb-8ccc-1234567890ab",
        "url": "https://www.notion.so/x-12345678aaaa4bbb8ccc1234567890ab",
        "created": yaml.safe_load("2026-01-05T09:30:00Z"),
        "edited": yaml.safe_load("2026-02-01T12:00:00Z"),
        "icon": "🧭", "cover": "cover photo.jpg",
        "properties": {"Status": "Done", "Due: when": "- soon"},
    }
    assert body == "\n# Q&A: yes/no? #1\n\n![Cover](cover%20photo.jpg)\n\nBody.\n"
    assert MD.render(body).startswith("<h1>Q&amp;A: yes/no? #1</h1>")


def test_untitled_page_and_file_icon() -> None:
    text = render_page(page(""), [], LINKS, icon="icon.png")
    assert "\n# Untitled\n" in text and "icon: icon.png\n" in text
    assert text.endswith("# Untitled\n")


def test_collect_nodes_walks_children_but_not_child_pages() -> None:
    def raw(kind: str, block_id: str, has_children: bool, trashed: bool = False) -> Block:
        node = block(kind, {"rich_text": rt(block_id)} if kind != "child_page" else
                     {"title": block_id}, block_id=block_id).block
        return Block(**{**node.__dict__, "has_children": has_children, "in_trash": trashed})

    tree = {
        "root": [raw("toggle", "t", True), raw("child_page", "c", True),
                 raw("paragraph", "gone", False, trashed=True)],
        "t": [raw("paragraph", "p", False)],
    }
    asked: list[str] = []

    def children_of(block_id: str) -> list[Block]:
        asked.append(block_id)
        return tree[block_id]

    nodes = collect_nodes("root", children_of)
    assert [n.block.id for n in nodes] == ["t", "c"]
    assert [n.block.id for n in nodes[0].children] == ["p"]
    assert asked == ["root", "t"]  # the child page's content is its own folder's


def test_an_archived_page_says_so_in_its_front_matter() -> None:
    archived = render_page(page("Old plans", is_archived=True), [], LINKS)
    head = yaml.safe_load(archived[4:].split("\n---\n", 1)[0])
    assert head["archived"] is True
    live = render_page(page("Plans", is_archived=False), [], LINKS)
    assert "archived" not in yaml.safe_load(live[4:].split("\n---\n", 1)[0])
