"""The demo workspace "Field Notes": nested pages, databases and media worth browsing."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable
from pathlib import Path

from . import media
from .model import (
    Block,
    Database,
    FileSpec,
    Node,
    Page,
    Rollup,
    Workspace,
    callout,
    columns,
    file_block,
    heading,
    paragraph,
    rich_text,
    synced,
    synced_copy,
    toggle,
)
from .samples import (
    CONTENT_TYPES,
    Linker,
    bookmark,
    bullet,
    code,
    date_mention,
    divider,
    embed,
    equation,
    inline_equation,
    numbered,
    para,
    person,
    quote,
    runs,
    table,
    table_of_contents,
    todo,
    toggle_heading,
    user_mention,
)

__all__ = ["build_demo", "BIG_FILE_BYTES"]

logger = logging.getLogger(__name__)

# Bump when a generator's output changes, so cached media in data_dir are rebuilt.
_MEDIA_VERSION = "v1"
BIG_FILE_BYTES = 64 * media.MiB
_PHOTO_W, _PHOTO_H = 640, 480
_COVER_W, _COVER_H = 960, 320


class _Media:
    """Generated files cached under ``data_dir/media`` and served from disk."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = Path(data_dir) / "media"

    def file(self, disk_name: str, make: Callable[[], bytes], key: str,
             name: str | None = None, external: bool = False) -> FileSpec:
        """A new FileSpec for a cached file; ``name`` is what Notion shows (may repeat)."""
        path = media.cached_file(self.dir / disk_name, f"{_MEDIA_VERSION}/{key}", make)
        shown = name or disk_name
        extension = shown.rsplit(".", 1)[-1].lower()
        return FileSpec(name=shown, path=path, external=external,
                        content_type=CONTENT_TYPES.get(extension, "application/octet-stream"))

    def photo(self, seed: str, name: str | None = None, width: int = _PHOTO_W,
              height: int = _PHOTO_H) -> FileSpec:
        return self.file(f"photo-{seed}-{width}x{height}.jpg",
                         lambda: media.jpeg(width, height, f"demo/{seed}"),
                         f"jpeg/{seed}/{width}x{height}", name or f"{seed}.jpg")

    def cover(self, seed: str) -> FileSpec:
        return self.photo(seed, f"cover-{seed}.jpg", _COVER_W, _COVER_H)

    def picture(self, seed: str, name: str, width: int, height: int) -> FileSpec:
        return self.file(f"picture-{seed}-{width}x{height}.png",
                         lambda: media.png(width, height, f"demo/{seed}"),
                         f"png/{seed}/{width}x{height}", name)

    def chart(self, seed: str, name: str, values: list[float]) -> FileSpec:
        width, height = 480, 320
        return self.file(f"chart-{seed}.png", lambda: media.encode_png(
            media.render_chart(width, height, values, seed), width, height), f"chart/{seed}/"
            + ",".join(map(str, values)), name)

    def diagram(self, seed: str, name: str, n_nodes: int) -> FileSpec:
        width, height = 480, 320
        return self.file(f"diagram-{seed}.png", lambda: media.encode_png(
            media.render_diagram(width, height, n_nodes, seed), width, height),
            f"diagram/{seed}/{n_nodes}", name)

    def text(self, name: str, content: str) -> FileSpec:
        data = content.encode("utf-8")
        return self.file(name, lambda: data, f"text/{name}/{len(data)}/{hash_text(content)}")


def hash_text(content: str) -> str:
    """A short stable digest of text (``hash()`` is salted per process)."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]


def _b(text: str) -> list[dict[str, object]]:
    return rich_text(text, bold=True)


def _i(text: str) -> list[dict[str, object]]:
    return rich_text(text, italic=True)


def _c(text: str) -> list[dict[str, object]]:
    return rich_text(text, code=True)


def _link(text: str, url: str) -> list[dict[str, object]]:
    return rich_text(text, href=url)


# ---- Journal ---------------------------------------------------------------------------------


def _glacier_day(m: _Media) -> Page:
    return Page("Day 3 — Glacier walk", icon="\U0001f9ca", children=[
        para("We met the guide at ", _b("Sólheimajökull"), " at nine. The ice is darker than "
             "you expect: ash from old eruptions lies in stripes, like pages of a book that "
             "somebody left out in the rain."),
        heading(3, "Gear check"),
        todo("Crampons (rented at the hut)", checked=True),
        todo("Two warm layers and a shell", checked=True),
        todo("Thermos of tea", checked=True, children=[todo("Refill at the café", checked=False)]),
        todo("Spare battery for the camera"),
        quote("Walk like a duck, stamp your feet, trust the spikes.",
              [paragraph("— our guide, every ten minutes")]),
        toggle("Photos from the ice", [
            file_block("image", m.photo("glacier-tongue", "glacier-tongue.jpg"),
                       caption="The glacier tongue at 10:40"),
            file_block("image", m.photo("ice-cave", "IMG_2077.jpg")),
        ]),
        heading(3, "Timeline"),
        table([["Time", "Where", "Note"],
               ["09:00", "Car park", "Harness fitting"],
               ["10:15", "First ridge", "Moulin, 20 m deep"],
               ["12:30", "Ice cave", "Blue light, dripping"],
               ["14:00", "Back down", "Soup at the hut"]]),
    ])


def _iceland(m: _Media) -> Page:
    spray = m.file("skogafoss-spray.avi", lambda: media.mjpeg_avi(48, 320, 240, 12, "demo/skoga"),
                   "avi/skoga/48x320x240@12")
    waves = m.file("waves-at-reynisfjara.wav", lambda: media.wav(8, "demo/reynisfjara"),
                   "wav/reynisfjara/8s")
    itinerary = m.file("iceland-itinerary.pdf", lambda: media.pdf([
        ("Iceland itinerary", ["Day 1: Reykjavík, Hallgrímskirkja, harbour walk.",
                               "Day 2: Golden Circle: Þingvellir, Geysir, Gullfoss.",
                               "Day 3: Sólheimajökull glacier walk.",
                               "Day 4: Vík, Reynisfjara black beach, Dyrhólaey."]),
        ("Packing", ["Wool layers, shell, hat, gloves.", "Headlamp: the days are short.",
                     "Cash is rarely needed; cards work everywhere."]),
    ], title="Iceland itinerary"), "pdf/iceland")
    return Page("Iceland in October", icon="\U0001f30b", cover=m.cover("iceland"), children=[
        para("Ten days, one small car, and more waterfalls than we could name. October means "
             "short days and long ", _i("blue hours"), ", which suits a camera just fine."),
        columns(
            [file_block("image", m.photo("skogafoss", "IMG_2041.jpg"), caption="Skógafoss"),
             file_block("image", m.photo("seljalandsfoss", "IMG_2042.jpg"))],
            [file_block("image", m.photo("reynisfjara", "IMG_2043.jpg"),
                        caption="Basalt columns at Reynisfjara"),
             paragraph("The beach is beautiful and dangerous: sneaker waves come far up the "
                       "sand without warning.")],
        ),
        callout("Skógafoss throws spray a hundred metres. This clip is mostly mist.",
                [file_block("video", spray, caption="Spray at Skógafoss")], emoji="\U0001f4a6"),
        toggle("Sounds", [file_block("audio", waves, caption="Waves at Reynisfjara"),
                          paragraph("Recorded from the car park, wind shield on.")]),
        toggle("More photos", [
            # Same name as the first photo above: cameras restart their counters.
            file_block("image", m.photo("aurora", "IMG_2041.jpg"), caption="Aurora, night 6"),
            file_block("image", m.picture("route-map", "route-map.png", 480, 320)),
        ]),
        file_block("pdf", itinerary),
        _glacier_day(m),
    ])


def _lisbon(m: _Media) -> Page:
    removed = toggle("Draft: restaurant list (moved to the Trips database)", [
        file_block("image", m.photo("lisbon-old-menu", "menu.jpg", 320, 240)),
    ])
    removed.in_trash = True
    return Page("Lisbon long weekend", icon="\U0001f68b", children=[
        para("Three days of hills, tiles and custard tarts. Tram 28 is charming for exactly "
             "one ride; after that, walk."),
        numbered("Alfama at sunrise, before the tour groups", [
            bullet("Miradouro de Santa Luzia", [bullet("Bring a coffee; the benches face east")]),
            bullet("Sé cathedral, closed until ten")]),
        numbered("LX Factory on Sunday for the book shop"),
        numbered(runs("Belém: the tower, the monastery, and ", _b("Pastéis de Belém")),
                 [bullet("The queue moves fast; take the side door for seats")]),
        removed,
        file_block("image", m.photo("lisbon-rooftops", "rooftops.jpg"),
                   caption="Rooftops from the castle"),
    ])


def _meeting_notes(day: str, topic: str, actions: list[str]) -> Page:
    return Page("Meeting notes", icon="\U0001f4dd", children=[
        para("Notes from ", date_mention(day), ": ", _b(topic), ". Taken by ",
             user_mention(person(_PEOPLE[4][0])), "."),
        *(todo(action) for action in actions),
    ])


def _journal(m: _Media) -> Page:
    year_2025 = Page("2025", icon="\U0001f5d3\ufe0f", children=[
        paragraph("Trips and notes from the year."), _iceland(m), _lisbon(m)])
    year_2026 = Page("2026", icon="\U0001f5d3\ufe0f", children=[
        Page("January plans", icon="\u2744\ufe0f", children=[
            para("Plans for ", date_mention("2026-01-05", "2026-01-31"), "."),
            todo("Print the Iceland photo book", children=[
                todo("Pick 40 photos", checked=True), todo("Order proofs")]),
            todo("Service the bike before spring"),
            todo("Book the Lofoten ferry", checked=True),
        ]),
    ])
    return Page("Journal", icon="\U0001f4d3", cover=m.cover("journal"), children=[
        para("A running journal. Each year is a page; each trip gets its own page with photos, "
             "sounds and the odd map."),
        year_2025,
        year_2026,
        # Three pages with one title in one folder: they must all stay reachable.
        _meeting_notes("2025-11-03", "photo book layout", ["Ask the printer for paper samples"]),
        _meeting_notes("2025-11-17", "budget for 2026", ["Move savings to the trip fund"]),
        _meeting_notes("2025-12-01", "winter trip shortlist", ["Compare Hokkaido and Lofoten"]),
    ])


# ---- Databases -------------------------------------------------------------------------------

_PEOPLE = (
    ("Ada Lindqvist", "ada@example.com", "Photographer"),
    ("Bruno Carvalho", "bruno@example.com", "Driver"),
    ("Chiara Bellini", "chiara@example.com", "Cook"),
    ("Dmitri Volkov", "dmitri@example.com", "Navigator"),
    ("Emma Okafor", "emma@example.com", "Planner"),
    ("Farid Haddad", "farid@example.com", "Photographer"),
)

_TRIPS = (
    ("Iceland ring road", "Iceland", "2025-10-02", 3200, ["hiking", "photography"]),
    ("Lisbon long weekend", "Portugal", "2025-05-16", 650, ["city", "food"]),
    ("Kyoto in autumn", "Japan", "2025-11-20", 4100, ["culture", "food", "photography"]),
    ("Dolomites hut-to-hut", "Italy", "2025-07-05", 1400, ["hiking"]),
    ("Lofoten by bike", "Norway", "2026-06-12", 2300, ["cycling", "photography"]),
    ("Atlas mountains trek", "Morocco", "2024-04-10", 1100, ["hiking", "culture"]),
    ("Scottish Highlands", "United Kingdom", "2024-09-01", 1300, ["hiking", "photography"]),
    ("Patagonia W trek", "Chile", "2026-02-02", 5200, ["hiking"]),
    ("Vienna Christmas markets", "Austria", "2024-12-12", 800, ["city", "food", "winter"]),
    ("Slovenian lakes", "Slovenia", "2025-06-01", 900, ["hiking", "beach"]),
    ("Crete in spring", "Greece", "2024-05-03", 1200, ["beach", "food"]),
    ("Banff and Jasper", "Canada", "2023-08-14", 3900, ["hiking", "photography"]),
    ("Hokkaido powder", "Japan", "2027-01-20", 4600, ["winter"]),
    ("Faroe Islands", "Denmark", "2026-09-10", 2700, ["hiking", "photography"]),
    ("Tuscany food tour", "Italy", "2023-10-07", 1700, ["food", "culture"]),
    ("Copenhagen design week", "Denmark", "2025-06-10", 1000, ["city", "culture"]),
    ("Azores whale watching", "Portugal", "2026-07-20", 2100, ["beach", "photography"]),
    ("Tasmania road trip", "Australia", "2024-02-15", 4800, ["hiking", "beach"]),
    ("New Zealand Great Walks", "New Zealand", "2027-03-01", 6100, ["hiking"]),
    ("Camino Portugués", "Spain", "2026-04-18", 900, ["hiking", "culture"]),
)

_TRIPS_SCHEMA = {
    "Name": "title", "Country": "select", "Dates": "date", "Budget (EUR)": "number",
    "Tags": "multi_select", "Status": "status", "Booked": "checkbox", "Website": "url",
    "Contact": "email", "Notes": "rich_text", "Photos": "files", "Companions": "relation",
    "Stops": "relation", "Distance (km)": "rollup", "Per person (EUR)": "formula",
    "Organiser": "people", "Trip ID": "unique_id", "Created by": "created_by",
}  # fmt: skip

# The Iceland ring road, stop by stop: (place, region, kilometres from the previous stop).
_RING_ROAD = (
    ("Reykjavík", "Capital Region", 0), ("Þingvellir", "South", 45), ("Geysir", "South", 60),
    ("Gullfoss", "South", 10), ("Selfoss", "South", 70), ("Seljalandsfoss", "South", 80),
    ("Skógafoss", "South", 30), ("Sólheimajökull", "South", 10), ("Vík", "South", 25),
    ("Kirkjubæjarklaustur", "South", 70), ("Skaftafell", "South", 70),
    ("Jökulsárlón", "South", 55), ("Höfn", "East", 80), ("Djúpivogur", "East", 100),
    ("Breiðdalsvík", "East", 60), ("Fáskrúðsfjörður", "East", 50), ("Egilsstaðir", "East", 45),
    ("Seyðisfjörður", "East", 27), ("Dettifoss", "North", 150), ("Ásbyrgi", "North", 35),
    ("Húsavík", "North", 60), ("Mývatn", "North", 55), ("Goðafoss", "North", 40),
    ("Akureyri", "North", 50), ("Siglufjörður", "North", 75), ("Hofsós", "North", 60),
    ("Blönduós", "North-west", 95), ("Hvammstangi", "North-west", 50),
    ("Borgarnes", "West", 110), ("Snæfellsjökull", "West", 120), ("Arnarstapi", "West", 15),
    ("Akranes", "West", 140), ("Reykjavík (home)", "Capital Region", 50),
)  # fmt: skip


def _waypoints() -> Database:
    """Stops along the Iceland ring road: more than the 25 relations a page object holds."""
    rows = [Page(name, properties={"Name": name, "Day": 1 + index // 4, "Region": region,
                                   "Km": km})
            for index, (name, region, km) in enumerate(_RING_ROAD)]
    return Database("Waypoints", icon="\U0001f4cd", rows=rows, properties={
        "Name": "title", "Day": "number", "Region": "select", "Km": "number"})


def _people() -> Database:
    rows = [Page(name, properties={"Name": name, "Email": email, "Role": role})
            for name, email, role in _PEOPLE]
    return Database("People", icon="\U0001f465", rows=rows, properties={
        "Name": "title", "Email": "email", "Role": "select"})


def _trip_row(m: _Media, index: int, people: list[Page], stops: list[Page]) -> Page:
    name, country, start, budget, tags = _TRIPS[index]
    rng = random.Random(f"demo/trip/{index}")
    slug = name.lower().replace(" ", "-")
    year = int(start[:4])
    status = "Done" if year < 2025 or start < "2025-12" else rng.choice(
        ("Not started", "In progress"))
    # 0 to 3 photos per row.
    photos = [m.photo(f"trip-{index}-{k}", f"{slug}-{k + 1}.jpg", 320, 240)
              for k in range(index * 7 % 4)]
    if index == 4:
        # One external file object among the attachments.
        photos.append(m.file("lofoten-route.png", lambda: media.png(320, 200, "demo/lofoten"),
                             "png/lofoten", external=True))
    companions = [people[(index + k) % len(people)] for k in range(index % 3)]
    body: list[Node] = []
    if index < 4:
        body = [para("Notes for ", _b(name), ". ", media.prose(2, f"demo/trip/{index}")),
                bullet(f"Budget: {budget} EUR"), bullet(f"Country: {country}")]
    return Page(name, children=body, properties={
        "Name": name,
        "Country": country,
        "Dates": start,
        "Budget (EUR)": budget,
        "Tags": tags,
        "Status": status,
        "Booked": status != "Not started",
        "Website": f"https://example.com/trips/{slug}",
        "Contact": f"{slug.split('-')[0]}@example.com",
        "Notes": media.prose(1, f"demo/trip-notes/{index}"),
        "Photos": photos,
        "Companions": companions,
        "Stops": stops if index == 0 else [],
        "Distance (km)": Rollup("Stops", "Km", "sum"),
        "Per person (EUR)": round(budget / (len(companions) + 1), 2),
        "Organiser": [person(_PEOPLE[index % len(_PEOPLE)][0])],
        "Trip ID": f"TRIP-{index + 1}",
        "Created by": None,
    })


def _trips(m: _Media, people: Database, waypoints: Database) -> Database:
    companions = people.data_sources[0].rows
    stops = waypoints.data_sources[0].rows
    rows = [_trip_row(m, i, companions, stops) for i in range(len(_TRIPS))]
    return Database("Trips", icon="\u2708\ufe0f", cover=m.cover("trips"),
                    properties=dict(_TRIPS_SCHEMA), rows=rows)


_BOOKS = (
    ("A Pattern Language", "Christopher Alexander", "Done", 5, ["architecture"]),
    ("Thinking in Systems", "Donella Meadows", "Done", 5, ["systems"]),
    ("The Left Hand of Darkness", "Ursula K. Le Guin", "Done", 4, ["fiction"]),
    ("Designing Data-Intensive Applications", "Martin Kleppmann", "In progress", 5,
     ["computing"]),
    ("Braiding Sweetgrass", "Robin Wall Kimmerer", "In progress", 4, ["nature"]),
    ("The Design of Everyday Things", "Don Norman", "Not started", 0, ["design"]),
    ("The Overstory", "Richard Powers", "Not started", 0, ["fiction", "nature"]),
    ("The Pragmatic Programmer", "Andrew Hunt, David Thomas", "Done", 4, ["computing"]),
)


def _library(linker: Linker, trips: Database) -> Page:
    rows = [Page(title, properties={
        "Title": title, "Author": author, "Status": status, "Rating": rating,
        "Finished": f"2025-{i + 2:02d}-1{i}" if status == "Done" else None, "Genre": genres,
    }) for i, (title, author, status, rating, genres) in enumerate(_BOOKS)]
    reading = Database("Reading list", inline=True, rows=rows, properties={
        "Title": "title", "Author": "rich_text", "Status": "status", "Rating": "number",
        "Finished": "date", "Genre": "multi_select"})
    return Page("Library", icon="\U0001f4da", children=[
        paragraph("Books read, reading, and waiting on the shelf."),
        reading,
        para("Travel reading goes with the trip: see ", linker.mention(trips), "."),
    ])


# ---- Projects --------------------------------------------------------------------------------

_DESIGN_PAGES = [
    ("notionfs design notes", [
        "notionfs mounts a Notion workspace as a read-only file system.",
        "Pages become directories, databases become directories of rows, and every file "
        "object (images, videos, audio, PDFs, attachments, covers and icons) becomes a file.",
    ]),
    ("Layers", [
        "fuse_ops: the only module that speaks errno.",
        "tree: workspace to path tree with a metadata cache and stable names.",
        "remote: ranged reads on signed URLs, refreshed before they expire.",
        "blockcache: a byte-bounded, single-flight block cache with readahead.",
        "client: pagination, rate limiting and retries against the Notion API.",
    ]),
    ("Semantics", [
        "Names are unique per directory and never change when URLs refresh.",
        "Every file reports its exact size before the first read.",
        "No call waits forever: past its deadline it answers EIO or stale data.",
    ]),
    ("Open questions", [
        "How long may a listing be stale before a user notices?",
        "Should thumbnails be prefetched when a directory is listed?",
    ]),
]

_CACHE_SNIPPET = '''\
def read(self, offset: int, size: int) -> bytes:
    """Serve a read from cached blocks, fetching the missing ones once."""
    first, last = offset // BLOCK, (offset + size - 1) // BLOCK
    blocks = [self.cache.get_or_fetch(self.key, i) for i in range(first, last + 1)]
    data = b"".join(blocks)
    start = offset - first * BLOCK
    return data[start:start + size]
'''


def _notionfs_project(m: _Media, status: Block) -> Page:
    design = m.file("design-notes.pdf", lambda: media.pdf(
        [(title, lines) for title, lines in _DESIGN_PAGES], title="notionfs design notes"),
        "pdf/design")
    chart = m.chart("throughput", "throughput.png", [41, 180, 205])
    benchmarks = Page("Benchmarks", icon="\U0001f4c8", children=[
        para("Sequential reads of a 64 MiB file, cold cache, on the emulator."),
        table([["Block size", "Readahead", "Throughput"],
               ["256 KiB", "off", "41 MB/s"], ["1 MiB", "1 → 64 MiB", "180 MB/s"],
               ["4 MiB", "1 → 64 MiB", "205 MB/s"]]),
        file_block("image", chart, caption="Throughput by block size"),
        code("fio --name=seq --rw=read --bs=1M --size=64M --filename=mnt/Datasets/sensor-log.bin",
             "shell"),
    ])
    return Page("notionfs", icon="\U0001f5c2\ufe0f", children=[
        heading(1, "notionfs"),
        para("A FUSE file system for Notion. ", _b("Read-only"), ", streaming, and polite to "
             "the API: about ", _c("3"), " requests per second."),
        status,
        heading(2, "How reads work"),
        para("Signed file URLs expire after an hour, so reads go through a block cache keyed "
             "by file, not by URL. With block size ", inline_equation("B"), " a read of ",
             inline_equation("n"), " bytes touches at most"),
        equation("\\left\\lceil \\frac{n}{B} \\right\\rceil + 1"),
        paragraph("blocks. Sequential readers double their readahead until it reaches the cap."),
        code(_CACHE_SNIPPET, "python", caption="blockcache.py (sketch)"),
        heading(2, "Try it"),
        code("notionfs emulator &\nnotionfs mount ~/notion\nls ~/notion", "shell"),
        quote("Make it work, make it right, make it fast.", [paragraph("— Kent Beck")]),
        toggle_heading(3, "Design notes (PDF)", [file_block("pdf", design)]),
        bookmark("https://developers.notion.com/reference/intro", "Notion API reference"),
        divider(),
        benchmarks,
    ])


def _status_block(m: _Media) -> Block:
    """The original synced block: shown in Projects and mirrored on the welcome page."""
    return synced([
        callout("Status: the emulator serves every block type; mounts are read-only.", [
            file_block("image", m.picture("status-badge", "status.png", 200, 60)),
        ], emoji="\U0001f6a6"),
    ])


def _home_lab(m: _Media) -> Page:
    inventory = m.file("inventory.csv", lambda: media.csv_text(
        ["device", "role", "ip", "watts"],
        [["router", "gateway", "192.168.1.1", 9], ["nas", "storage", "192.168.1.10", 28],
         ["pi-4", "dns + backups", "192.168.1.20", 5], ["switch", "8 ports", "", 4]]),
        "csv/inventory")
    config = m.text("router-config.txt", "hostname router\ninterface lan0\n  address "
                    "192.168.1.1/24\n  dhcp-range 192.168.1.100 192.168.1.199\n")
    return Page("Home lab", icon=m.picture("homelab-icon", "homelab.png", 64, 64), children=[
        paragraph("A small rack under the stairs: router, NAS, a Raspberry Pi and a switch."),
        columns(
            [file_block("image", m.diagram("network", "network.png", 4),
                        caption="Network sketch")],
            [file_block("file", inventory), paragraph("Power draw is about 46 W in total.")],
        ),
        toggle("Router configuration", [file_block("file", config)]),
    ])


def _expenses_csv() -> bytes:
    rng = random.Random("demo/expenses")
    categories = ("travel", "food", "gear", "books", "lodging")
    rows = [[f"2025-{1 + i // 5:02d}-{1 + (i * 7) % 28:02d}", rng.choice(categories),
             rng.choice(("train", "dinner", "boots", "paperback", "hostel", "ferry", "maps")),
             f"{rng.uniform(4, 240):.2f}"] for i in range(60)]
    return media.csv_text(["date", "category", "description", "amount_eur"], rows)


def _datasets(m: _Media, data_dir: Path) -> Page:
    big_path = Path(data_dir) / "sensor-log.bin"
    media.write_pattern_file(big_path, BIG_FILE_BYTES, "demo/sensor-log")
    big = FileSpec(name="sensor-log.bin", path=big_path, content_type="application/octet-stream")
    readme = m.text("README.txt", "Datasets\n========\n\nexpenses-2025.csv  spending by "
                    "category, one row per purchase\nsensor-log.bin     64 MiB of raw sensor "
                    "frames (deterministic test pattern)\n\n" + media.prose(6, "demo/readme")
                    + "\n")
    return Page("Datasets", icon="\U0001f4ca", children=[
        para("Raw data for the benchmarks. ", _b("sensor-log.bin"), " is large on purpose: "
             "use it to watch readahead at work."),
        file_block("file", m.file("expenses-2025.csv", _expenses_csv, "csv/expenses"),
                   caption="Expenses, 2025"),
        file_block("file", readme),
        file_block("file", big, caption="64 MiB of sensor frames"),
    ])


def _projects(m: _Media, data_dir: Path, status: Block) -> Page:
    drafts = Page("Old drafts", in_trash=True, children=[
        paragraph("Deleted: an early plan to write files back to Notion.")])
    return Page("Projects", icon=m.picture("projects-icon", "projects.png", 64, 64), children=[
        paragraph("Things being built, fixed or measured."),
        _notionfs_project(m, status),
        _home_lab(m),
        _datasets(m, data_dir),
        drafts,
    ])


# ---- Recipes, odds and ends, private notes ---------------------------------------------------


def _recipes(m: _Media) -> Page:
    sourdough = Page("Sourdough", icon="\U0001f35e", children=[
        para("A forgiving country loaf. ", _i("Hydration 75 %"), ", one overnight proof."),
        numbered("Feed the starter in the morning (1:5:5)."),
        numbered("Mix 750 g flour, 560 g water; rest an hour.", [
            bullet("Add 150 g active starter and 18 g salt"), bullet("Pinch and fold")]),
        numbered("Four sets of stretch and folds, 30 minutes apart."),
        numbered("Shape, basket, fridge overnight; bake at 250 °C in a pot."),
        table([["Flour", "Grams", "Baker's %"], ["Bread flour", "650", "87"],
               ["Whole wheat", "100", "13"], ["Water", "560", "75"], ["Salt", "18", "2.4"]],
              row_header=True),
        file_block("image", m.photo("sourdough-crumb", "crumb.jpg"), caption="Open crumb"),
    ])
    rye = Page("Sourdough", icon="\U0001f33e", children=[
        para("The rye version: denser, darker, better with butter. Same title, different "
             "bread."),
        bullet("40 % rye flour"), bullet("Caraway seeds, one tablespoon"),
        todo("Try a longer cold proof", checked=False),
    ])
    pasta = Page("Pasta 1/2 — weeknight", icon="\U0001f35d", children=[
        para("Half a recipe, half an improvisation: garlic, chilli, lemon, parsley, and the "
             "pasta water doing the real work."),
        code("boil(water, salt=\"like the sea\")\ncook(spaghetti, minutes=9)\n"
             "toss(pan, pasta_water=\"a ladle\")", "python", caption="In pseudo-code"),
    ])
    return Page("Recipes", icon="\U0001f372", cover=m.cover("recipes"), children=[
        paragraph("Recipes that survived more than one attempt."),
        sourdough, rye, pasta,
    ])


_LONG_TITLE = ("Notes on the long walk from Porto to Santiago de Compostela — día a día, "
               "with every café, albergue, blister and conversation along the Caminho "
               "Português, written down so that nothing is forgotten: " + "café · " * 12)


def _odds_and_ends(m: _Media) -> Page:
    assert len(_LONG_TITLE.encode("utf-8")) > 255
    return Page("Odds & ends", icon="\U0001f9fa", children=[
        paragraph("Pages with awkward titles, for file managers to chew on."),
        Page("\U0001f389 Party planning", children=[
            todo("Balloons"), todo("Playlist", checked=True), todo("Cake (chocolate)")]),
        Page(".dotfiles and other hidden things", children=[
            paragraph("A title that starts with a dot must not become a hidden file.")]),
        Page("Trailing spaces   ", children=[paragraph("This title ends in three spaces.")]),
        Page("Q&A: either/or?", children=[paragraph("A slash in a title cannot be a path.")]),
        Page(_LONG_TITLE, children=[paragraph("The title of this page is over 255 bytes.")]),
        Page("", children=[paragraph("A page nobody named.")]),
    ])


def _private(m: _Media) -> Page:
    packing = m.text("packing-list.txt", "passport\ncharger\nwool socks x3\nrain shell\n"
                     "headlamp\nreusable bottle\n")
    shared_child = Page("Shared packing list", icon="\U0001f392", children=[
        paragraph("Shared with the integration, though its parent page is not."),
        todo("Passport", checked=True), todo("Charger"), todo("Rain shell"),
        file_block("file", packing),
    ])
    return Page("Private notes", shared=False, children=[
        paragraph("Not shared with the integration."), shared_child])


def _welcome(m: _Media, linker: Linker, sections: dict[str, Page | Database],
             status: Block) -> Page:
    aurora = m.file("aurora-external.png", lambda: media.png(480, 270, "demo/aurora-ext"),
                    "png/aurora-ext", name="aurora.png", external=True)
    organised = Page("How this workspace is organised", icon="\U0001f9ed", children=[
        numbered("Top-level pages are sections.", [
            bullet("Journal: one page per year, one per trip"),
            bullet("Projects: work in progress, with data files")]),
        numbered("Databases hold anything with the same shape.", [
            bullet("Trips: every journey, its budget, photos and companions"),
            bullet("People: who came along")]),
        numbered("Files live where they are used; nothing is uploaded twice."),
        toggle("Why not folders?", [paragraph(
            "Pages can hold text and files at once, and a page can live inside a paragraph's "
            "toggle. A mounted file system shows them as folders anyway.")]),
        todo("Archive 2024 trips", checked=True),
        todo("Tag every trip with a country", children=[todo("Fix “United Kingdom”")]),
    ])
    return Page("Welcome to Field Notes", icon="\U0001f44b", cover=m.cover("welcome"), children=[
        callout("This workspace is generated by the notionfs emulator. Mount it and browse "
                "it like any folder.", [], emoji="\U0001f44b"),
        table_of_contents(),
        heading(2, "What's inside"),
        bullet(runs_of(linker, sections["Journal"], " — trips, photos, sounds")),
        bullet(runs_of(linker, sections["Trips"], " — a database of 20 journeys")),
        bullet(runs_of(linker, sections["Projects"], " — notionfs itself, a home lab, data")),
        bullet(runs_of(linker, sections["Recipes"], " — bread and pasta")),
        bullet(runs_of(linker, sections["Library"], " — the reading list")),
        heading(2, "Today"),
        synced_copy(status),
        file_block("image", aurora, caption="Aurora over Þingvellir (external link)"),
        quote("The world is a book, and those who do not travel read only one page."),
        divider(),
        para("Made with ", _link("the Notion API", "https://developers.notion.com"), ", ",
             _i("patience"), " and ", _c("python3"), "."),
        embed("https://www.openstreetmap.org/export/embed.html?bbox=-24.5,63.3,-13.5,66.6"),
        linker.link_to_page(sections["Trips"]),
        organised,
    ])


def runs_of(linker: Linker, target: Page | Database, tail: str) -> list[dict[str, object]]:
    """A mention of ``target`` followed by plain text."""
    return [*linker.mention(target), *rich_text(tail)]


def build_demo(data_dir: Path) -> Workspace:
    """The "Field Notes" workspace; media are generated into ``data_dir`` once and reused.

    Deterministic: the same ids and file bytes on every call. The first call writes about
    70 MiB under ``data_dir`` (a 64 MiB pattern file and cached pictures, video and sound).
    """
    data_dir = Path(data_dir)
    m = _Media(data_dir)
    linker = Linker()
    status = _status_block(m)
    people = _people()
    waypoints = _waypoints()
    trips = _trips(m, people, waypoints)
    sections: dict[str, Page | Database] = {
        "Journal": _journal(m),
        "Trips": trips,
        "Projects": _projects(m, data_dir, status),
        "Recipes": _recipes(m),
    }
    sections["Library"] = _library(linker, trips)
    welcome = _welcome(m, linker, sections, status)
    pages: list[Page | Database] = [
        welcome, sections["Journal"], trips, people, sections["Projects"], sections["Recipes"],
        sections["Library"], _odds_and_ends(m), _private(m),
        # Last, so that adding it left the ids of everything above unchanged.
        waypoints,
    ]
    workspace = Workspace(name="Field Notes", pages=pages, seed="field-notes-demo",
                          bot_name="notionfs demo")
    logger.debug("demo workspace built in %s", data_dir)
    return linker.finish(workspace)
