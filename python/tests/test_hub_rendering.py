"""A filled card as the Hub shows it, in headless Chromium.

The Hub renders a model card's Markdown body to HTML and resolves relative image links against
the repository's files. Here the body is rendered with markdown-it-py (CommonMark, tables, raw
HTML), the card's folder is served over http on 127.0.0.1, and Chromium loads the page with
every other host unresolvable: no traffic leaves the machine. The training figure must decode
at the PNG's own size, and a screenshot of the section that shows it must show the plot.

`CARDFILL_HUB_SCREENSHOT=PATH` also copies that screenshot to PATH (docs/figure-on-hub.png).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import struct
import subprocess
import threading
import zlib
from pathlib import Path

import cardfill
import pytest

REPO = Path(__file__).resolve().parents[2]
REAL = REPO / "tests" / "fixtures" / "real"
FIGURE = "cardfill-training.png"
#: The page's width, as the Hub's model card column (about 840 px).
WIDTH = 840

#: Hub-like page: the card's HTML in a column, images no wider than it; `load` fires once every
#: image has loaded or failed, then each image's natural size is written into the DOM.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>card</title>
<style>
body {{ margin: 0; background: #fff; color: #1f2937; font: 16px/1.6 "DejaVu Sans", sans-serif; }}
article {{ max-width: {width}px; padding: 8px 16px; box-sizing: border-box; }}
img {{ max-width: 100%; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #e5e7eb; padding: 2px 8px; }}
</style></head>
<body><article>
{body}
</article>
<script>
window.addEventListener("load", () => {{
  const out = document.createElement("pre");
  out.id = "decoded";
  out.textContent = JSON.stringify([...document.images].map((i) => ({{
    src: i.getAttribute("src"), width: i.naturalWidth, height: i.naturalHeight,
    complete: i.complete }})));
  document.body.appendChild(out);
}});
</script></body></html>
"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (.ci/install-deps installs it with apt-get as root)")


def markdown_body(card: str) -> str:
    """The card without its YAML front matter, as HTML (the Hub shows the metadata apart)."""
    from markdown_it import MarkdownIt

    if card.startswith("---\n"):
        card = card.split("\n---\n", 1)[1]
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(card)


def figure_section(card: str) -> str:
    """The Markdown of the section holding the figure: its heading to the next heading."""
    lines = card.splitlines()
    at = next(i for i, line in enumerate(lines) if f"]({FIGURE})" in line)
    start = max(i for i in range(at + 1) if lines[i].startswith("#"))
    end = next((i for i in range(at + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return "\n".join(lines[start:end]) + "\n"


class Served:
    """`directory` over http on 127.0.0.1 (a free port), recording the paths fetched."""

    def __init__(self, directory: Path):
        self.fetched: list[tuple[str, int]] = []
        served = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_request(self, code="-", size="-"):
                served.fetched.append((self.path, int(code) if str(code).isdigit() else 0))

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=str(directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def headless(tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    """Chromium on `url`, headless, resolving no host but 127.0.0.1."""
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--user-data-dir={tmp / 'chromium-profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--virtual-time-budget=10000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of 8-bit RGB or RGBA pixels of a (non-interlaced) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytes(width * bpp)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        prev = bytes(line)
        rows.append(prev)
    return width, height, [bytes(r[i : i + 3]) for r in rows for i in range(0, stride, bpp)]


def test_the_training_figure_renders_as_on_the_hub(tmp_path):
    chromium()
    card_dir = tmp_path / "tf5-trainer"
    shutil.copytree(REAL / "tf5-trainer", card_dir)
    env = {**os.environ, "HF_HUB_CACHE": str(REAL / "hf-cache"), "HF_HUB_OFFLINE": "1"}
    filled = subprocess.run(
        [cardfill.find_cardfill_bin(), "fill", "--no-backup", str(card_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert filled.returncode == 0, filled.stderr
    card = (card_dir / "README.md").read_text()
    assert f"]({FIGURE})" in card
    figure = (card_dir / FIGURE).read_bytes()
    png_size = struct.unpack(">II", figure[16:24])

    (card_dir / "index.html").write_text(PAGE.format(width=WIDTH, body=markdown_body(card)))
    section = markdown_body(figure_section(card))
    (card_dir / "section.html").write_text(PAGE.format(width=WIDTH, body=section))
    shot = tmp_path / "section.png"
    height = png_size[1] * (WIDTH - 32) // png_size[0] + 170
    with Served(card_dir) as served:
        dom = headless(tmp_path, served.url("index.html"), "--dump-dom")
        screenshot = headless(
            tmp_path,
            served.url("section.html"),
            f"--screenshot={shot}",
            f"--window-size={WIDTH},{height}",
        )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert screenshot.returncode == 0, screenshot.stderr[-2000:]

    # The relative link resolved against the card's folder and the PNG decoded at its size.
    found = re.search(r'<pre id="decoded">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stdout[-2000:]
    images = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    shown = [i for i in images if i["src"] == FIGURE]
    assert shown, images
    assert (shown[0]["width"], shown[0]["height"]) == png_size
    assert shown[0]["complete"]
    assert (f"/{FIGURE}", 200) in served.fetched, served.fetched
    assert all(path.startswith("/") for path, _ in served.fetched)

    # The screenshot shows the plot: the loss line's blue and the learning rate's green.
    width, shot_height, pixels = png_pixels(shot.read_bytes())
    assert (width, shot_height) == (WIDTH, height)
    blue = sum(1 for p in pixels if p[2] > 200 and p[0] < 80 and p[1] < 80)
    green = sum(1 for p in pixels if p[1] > 200 and p[0] < 80 and p[2] < 80)
    assert blue > 300 and green > 300, (blue, green)
    target = os.environ.get("CARDFILL_HUB_SCREENSHOT")
    if target:
        shutil.copyfile(shot, target)
