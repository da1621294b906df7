"""User-provided text (scenario and file names, GPU and model names, cell values quoted in problems) shown
inside Streamlit Markdown (st.markdown, st.caption, st.error, labels, help tooltips) as the text itself.

`md` backslash-escapes what Markdown, GitHub's extensions and Streamlit's additions would interpret:
emphasis, code, links and images, raw HTML and entities, bare URLs and e-mail addresses (GFM autolinks),
tables, strikethrough, LaTeX ($) and coloured-text directives; an & only where it starts an entity;
newlines become spaces, so the text cannot
start a heading, list or quote. Characters that only matter at the start of a line are escaped there.
Underscores between letters or digits (gpu_pool.csv) are left alone: CommonMark never reads them as
emphasis, and file names stay readable in the page source and in tests.
"""
from __future__ import annotations

import re

_ALWAYS = set("\\`*[]<>#~$|@{}")
_ENTITY = re.compile(r"&(#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")  # &amp; &#38; would be decoded
_LINE_START = re.compile(r"^(\s*)([-+=>!]|\d+(?=[.)]))")


def md(value: object) -> str:
    """`value` as text that Streamlit's Markdown shows literally."""
    text = " ".join(str(value).splitlines())
    out: list[str] = []
    n = len(text)
    for i, ch in enumerate(text):
        if ch in _ALWAYS:
            out.append("\\" + ch)
        elif ch == "_":
            before = text[i - 1] if i else ""
            after = text[i + 1] if i + 1 < n else ""
            out.append("_" if before.isalnum() and after.isalnum() else "\\_")
        elif ch == "&" and _ENTITY.match(text, i):
            out.append("\\&")
        elif ch == ":" and text.startswith("//", i + 1):  # http://x: no autolink
            out.append("\\:")
        elif ch == "." and text[max(0, i - 3):i].lower() == "www":  # www.x: no autolink
            out.append("\\.")
        else:
            out.append(ch)
    escaped = "".join(out)
    m = _LINE_START.match(escaped)
    if m:  # "- x", "1. x", "> x", "# x" would start a list, quote or heading
        start = m.end(1)
        if m.group(2)[0].isdigit():
            end = m.end(2)
            escaped = escaped[:end] + "\\" + escaped[end:]
        else:
            escaped = escaped[:start] + "\\" + escaped[start:]
    return escaped


def md_lines(items, bullet: str = "- ") -> str:
    """One Markdown list item per entry, each entry escaped."""
    return "\n".join(f"{bullet}{md(x)}" for x in items)


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, ... 21st."""
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


# What the latency figures mean (perf.serving_latency), said the same way wherever they are shown.
TTFT_HELP = ("time to first token, model estimate for a server under continuous batching: the request's own "
             "prefill through every stage, plus the steps it waits for and shares with the other sequences in "
             "flight (chunked prefill); no queueing for a free slot, no stage-to-stage transfer")
TPOT_HELP = ("time per output token, model estimate: stages × the slowest stage's step as a decoding sequence "
             "sees it (its decode plus its share of the other requests' prompts mixed into the step)")
