"""Let the browser fetch the first view's lazily loaded frontend code with the page, not after it.

Streamlit's frontend loads the code of most elements on first use: the "$ per million tokens" figure is an
st.metric, and the browser only asks for the Metric component (and the modules it imports, ~9 files) once
the first metric's message has arrived over the websocket. On a cold browser that is one more round of
requests, served by the same busy Python process, between the headline's data and the headline on screen
(measured 2026-11-30: frames in at 4.25 s, the Metric chunks in at 4.57 s, the headline drawn at 4.97 s).

`PreloadChunks` is an ASGI middleware on app.py's App that adds `<link rel="modulepreload">` tags for those
files to the main page's HTML, so that they load alongside the rest of the frontend. The file names carry
content hashes that change with each Streamlit release, so they are found in the installed Streamlit's
static folder: the chunk of each component in FIRST_VIEW_COMPONENTS and everything it imports statically,
less what the page already preloads. Nothing found (another Streamlit layout): the page is served as is.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

FIRST_VIEW_COMPONENTS = ("Metric",)  # what the headline needs before it can be drawn
_STATIC_IMPORT = re.compile(rb'(?:^|[;}\s])import\s*(?:[\w${},*\s]+from\s*)?"\./([\w.\-]+\.js)"')
_PRELOADED = re.compile(rb'(?:href|src)="\./static/js/([\w.\-]+\.js)"')


def static_js_dir() -> Path:
    import streamlit

    return Path(streamlit.__file__).parent / "static" / "static" / "js"


def imports_of(source: bytes) -> list[str]:
    """The files a module imports statically (`import ... from "./x.js"`, `import "./x.js"`); dynamic
    `import("./x.js")` is loaded only when used and is left out."""
    return [m.decode() for m in _STATIC_IMPORT.findall(source)]


def closure(js_dir: Path, components: tuple[str, ...]) -> list[str]:
    """The chunk files of `components` and of everything they import statically, in a stable order."""
    seen: dict[str, None] = {}
    todo = []
    for name in components:
        found = sorted(js_dir.glob(f"{name}.*.js"))
        if len(found) != 1:  # none, or ambiguous: preload nothing for it rather than the wrong file
            log.info("preload: %d chunk files for %s in %s; not preloaded", len(found), name, js_dir)
            continue
        todo.append(found[0].name)
    while todo:
        f = todo.pop(0)
        if f in seen or not (js_dir / f).is_file():
            continue
        seen[f] = None
        todo.extend(imports_of((js_dir / f).read_bytes()))
    return list(seen)


@lru_cache(maxsize=1)
def _links(index_html: bytes) -> bytes:
    js_dir = static_js_dir()
    already = {m.decode() for m in _PRELOADED.findall(index_html)}
    files = [f for f in closure(js_dir, FIRST_VIEW_COMPONENTS) if f not in already]
    log.info("preload: %d first-view chunk(s) added to the page", len(files))
    return b"".join(b'<link rel="modulepreload" crossorigin href="./static/js/%s">' % f.encode() for f in files)


def with_preloads(html: bytes) -> bytes:
    """The page with the first view's chunks preloaded before `</head>` (unchanged without one)."""
    at = html.find(b"</head>")
    if at < 0:
        return html
    return html[:at] + _links(html) + html[at:]


class PreloadChunks:
    """ASGI middleware: the main page's HTML gets the first view's modulepreload links (module docstring)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        from .first_view import is_main_page

        if not (scope["type"] == "http" and scope.get("method") == "GET" and is_main_page(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        body: list[bytes] = []

        async def rewrite(message):
            nonlocal start
            if message["type"] == "http.response.start":
                headers = {k.lower(): v for k, v in message.get("headers", [])}
                html = headers.get(b"content-type", b"").startswith(b"text/html")
                if html and b"content-encoding" not in headers:
                    start = message  # held until the body is complete: its length changes
                    return
            elif message["type"] == "http.response.body" and start is not None:
                body.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                page = with_preloads(b"".join(body))
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(page)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": page})
                return
            await send(message)

        await self.app(scope, receive, rewrite)
