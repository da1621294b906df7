"""The main page's HTML preloads the headline's lazily loaded frontend code (ui.preload), checked against
the installed Streamlit's own files and on a stand-in ASGI app."""
from __future__ import annotations

import re

from streamlit import config

from ui import preload

from .test_app_speed import run_coroutine


def test_the_metric_chunk_and_everything_it_imports_are_found_in_streamlits_static_files():
    js = preload.static_js_dir()
    files = preload.closure(js, ("Metric",))
    assert files and re.fullmatch(r"Metric\.[\w\-]+\.js", files[0])
    assert all((js / f).is_file() for f in files)
    # closed under static imports, and the imports read off the Metric file itself are in it
    for f in files:
        assert set(preload.imports_of((js / f).read_bytes())) <= set(files)
    metric_source = (js / files[0]).read_text()
    direct = re.findall(r'from\s*"\./([\w.\-]+\.js)"', metric_source)
    assert direct and set(direct) <= set(files)


def test_static_and_bare_imports_count_and_dynamic_ones_do_not():
    src = b'import{a as b}from"./x.A1.js";import"./side.B2.js";const m=()=>import("./lazy.C3.js");'
    assert preload.imports_of(src) == ["x.A1.js", "side.B2.js"]


def test_links_go_before_the_head_end_and_skip_what_the_page_already_loads():
    page = (preload.static_js_dir().parent.parent / "index.html").read_bytes()
    out = preload.with_preloads(page)
    added = re.findall(rb'<link rel="modulepreload" crossorigin href="\./static/js/([\w.\-]+\.js)">', out)
    before = re.findall(rb'(?:href|src)="\./static/js/([\w.\-]+\.js)"', page)
    new = [f for f in added if f not in before]
    assert new and any(f.startswith(b"Metric.") for f in new)
    assert out.count(b"Metric.") == 1 and out.index(b"Metric.") < out.index(b"</head>")
    assert len(set(added)) == len(added)  # nothing twice
    assert preload.with_preloads(b"<html>no head end</html>") == b"<html>no head end</html>"


def test_the_middleware_rewrites_the_main_page_with_a_right_length_and_passes_everything_else():
    assert (config.get_option("server.baseUrlPath") or "") == ""
    mw = preload.PreloadChunks(None)
    html = [b"<html><head><title>t</title>", b"</head><body></body></html>"]
    h = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", b"55")]

    sent = serve_direct(mw, "/", h, html)
    start, body = sent[0], sent[-1]
    length = dict(start["headers"])[b"content-length"]
    assert int(length) == len(body["body"]) and b"modulepreload" in body["body"]
    assert body["body"].startswith(html[0]) and body["body"].endswith(html[1])
    # not the main page, not HTML, or compressed: untouched, chunk by chunk
    for path, headers in (("/static/js/x.js", h), ("/", [(b"content-type", b"application/json")]),
                          ("/", h + [(b"content-encoding", b"gzip")])):
        sent = serve_direct(mw, path, headers, html)
        assert [m.get("body") for m in sent[1:]] == html and sent[0]["headers"] == headers


async def serve_inner(scope, send, headers, chunks):
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for i, c in enumerate(chunks):
        await send({"type": "http.response.body", "body": c, "more_body": i < len(chunks) - 1})


def serve_direct(mw, path, headers, chunks):
    sent = []

    async def inner(scope, receive, send):
        await serve_inner(scope, send, headers, chunks)

    async def collect(message):
        sent.append(message)

    mw.app = inner
    run_coroutine(mw({"type": "http", "method": "GET", "path": path}, None, collect))
    return sent
