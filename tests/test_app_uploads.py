"""Uploads that cannot be parsed (AppTest): a deeply nested scenario JSON, a CSV field over the CSV reader's
limit, an integer too long to convert. Each shows one line per problem naming the file, and the page, the
uploader, the loaded scenario and the last result stay. User text (an uploaded scenario's name) is shown
as text, never as Markdown."""
from __future__ import annotations

import json
import re

import pytest

from planner import Planner, scenario_from_texts
from planner.scenario_io import SCENARIO_FORMAT
from ui import scenario_texts as T
from ui.text import md, md_lines

from .apptest import metric, ok, run_app, usd_m

TIMEOUT = 180
MEDIUM = T.load_bundled_texts("medium")
NASTY = "**bold** [link](http://x) <b>html</b> `code` $x^2$ _em_ # not a heading"


def sidebar_errors(at) -> list[str]:
    return [e.value for e in at.sidebar.error]


def assert_page_kept(at, usd: str) -> None:
    ok(at)
    assert at.session_state["scenario_name"] == "medium"
    assert at.session_state["texts"] == MEDIUM
    assert metric(at, "$ per million") == usd  # the last result is still on the page
    assert at.file_uploader(key="upload") is not None  # and so is the uploader


@pytest.fixture(scope="module")
def medium_usd() -> str:
    return usd_m(Planner(scenario_from_texts(MEDIUM, "medium")).exact().plan.usd_per_million_tokens)


@pytest.mark.parametrize("name, data, expected", [
    ("deep.json", b"[" * 200_000 + b"]" * 200_000, f"deep.json: not a scenario file: nested more than "
                                                   f"{T.MAX_JSON_DEPTH} levels deep"),
    ("deep-object.json", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "deep-object.json: not a scenario file: nested"),
    ("gpu_pool.csv", b"gpu_type,count\nA100,1\n" + b"A" * 200_000 + b",1\n",
     "gpu_pool.csv, row 3: a field is longer than 131,072 characters (the CSV reader's limit)"),
    ("big-int.json", b'{"format": 1' + b"1" * 5000 + b"}", "big-int.json: not a scenario file (invalid JSON: "),
    ("long-field.json", json.dumps({"format": SCENARIO_FORMAT, "name": "x", "files": {
        **MEDIUM, "gpu_pool.csv": MEDIUM["gpu_pool.csv"] + "B" * 200_000 + ",1\n"}}).encode(),
     "long-field.json: gpu_pool.csv, row"),
])
def test_unparseable_upload_is_one_clear_line_and_keeps_the_page(name, data, expected, medium_usd):
    at = ok(run_app(TIMEOUT))
    assert metric(at, "$ per million") == medium_usd
    at.file_uploader(key="upload").set_value((name, data, "application/json" if name.endswith("json")
                                              else "text/csv")).run()
    errors = sidebar_errors(at)
    assert len(errors) == 1 and errors[0].startswith("**The upload was not loaded** (1):\n- ")
    line = errors[0].split("\n- ", 1)[1]
    assert "\n" not in line and line.startswith(expected), line
    assert "Traceback" not in line and "/" not in line.split(":")[0]  # no server paths
    assert_page_kept(at, medium_usd)
    # a good upload afterwards still loads
    small = T.load_bundled_texts("small")
    at.file_uploader(key="upload").set_value(("s.json", json.dumps(
        {"format": SCENARIO_FORMAT, "name": "small again", "files": small}).encode(), "application/json")).run()
    ok(at)
    assert not sidebar_errors(at) and at.session_state["scenario_name"] == "small again"


def test_markdown_in_an_uploaded_name_is_shown_as_text():
    at = ok(run_app(TIMEOUT))
    payload = json.dumps({"format": SCENARIO_FORMAT, "name": NASTY, "files": T.load_bundled_texts("small")})
    at.file_uploader(key="upload").set_value(("nasty.json", payload.encode(), "application/json")).run()
    ok(at)
    assert at.session_state["scenario_name"] == NASTY
    loaded = next(c.value for c in at.sidebar.caption if c.value.startswith("Loaded:"))
    assert f"Loaded: **{md(NASTY)}** (" in loaded  # the app's own bold around the escaped name
    assert "**bold**" not in loaded and "[link](" not in loaded and "<b>" not in loaded
    # nowhere on the page is the name handed to Markdown as it was typed
    shown = [e.value for kind in (at.markdown, at.caption, at.info, at.warning, at.error, at.success) for e in kind]
    shown += [e.proto.label for e in at.get("expandable")]
    assert not [v for v in shown if "[link](http" in v or "**bold**" in v]


ACTIVE = set("\\`*[]<>#~$|@{}")


def unescape(text: str) -> str:
    """What CommonMark shows for `text`: a backslash before ASCII punctuation is dropped."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)


@pytest.mark.parametrize("text", [
    NASTY, "- a list?", "+ a list?", "1. numbered", "2) numbered", "> quote", "# heading", "gpu_pool.csv, row 2",
    "A&amp;B", "www.example.com", "mail me@example.com", "| a | b |", "~~gone~~", ":red[colour]",
    "![img](http://x/i.png)", "back\\slash *x*", "two\nlines", "__init__", "_em_", "snake_case_name", "",
])
def test_md_escapes_what_markdown_would_interpret(text):
    out = md(text)
    assert "\n" not in out and unescape(out) == " ".join(text.splitlines())  # shown exactly as typed
    i = 0
    while i < len(out):  # every character Markdown acts on is escaped
        if out[i] == "\\":
            i += 2
            continue
        assert out[i] not in ACTIVE, (text, out, i)
        if out[i] == "_":  # only between letters or digits, where CommonMark never reads it as emphasis
            assert out[i - 1].isalnum() and out[i + 1].isalnum(), (text, out)
        i += 1
    assert not re.match(r"\s*([-+>]|\d+[.)])", out), out  # no list, quote or heading at the start
    assert not re.search(r"(?<!\\)://", out) and "www." not in out.lower()  # no bare-URL autolink
    assert not re.search(r"(?<!\\)&\w+;", out)  # no character reference (&amp;) decoded
    assert md("gpu_pool.csv") == "gpu_pool.csv"  # file names stay readable


def test_md_lines_is_one_line_per_problem():
    assert md_lines(["a\nb", "*c*"]) == "- a b\n- \\*c\\*"


def test_an_uploaded_engines_csv_joins_the_scenario_and_its_profile_plans():
    """A scenario's own engine profile (as `calibrate` writes it) can be uploaded beside config.csv: the
    plan on the page is the library's plan for the scenario with that profile."""
    header, vllm = (open(T.CONFIG_DIR / "engines.csv").read().splitlines()[i] for i in (0, 1))
    cols = header.split(",")
    cells = next(__import__("csv").reader([vllm]))
    row = dict(zip(cols, cells))
    # a slower stack than vllm: twice the scheduler time per step (a number one can check moves the plan)
    row.update(name="mine", scheduler_ms=str(2 * float(row["scheduler_ms"])), source="my runs, 2026-11-30")
    engines = header + "\n" + ",".join(f'"{row[c]}"' if "," in row[c] else row[c] for c in cols) + "\n"
    at = ok(run_app(TIMEOUT))
    at.file_uploader(key="upload").set_value(("engines.csv", engines.encode(), "text/csv")).run()
    ok(at)
    assert not sidebar_errors(at) and at.session_state["texts"]["engines.csv"] == engines
    config = MEDIUM["config.csv"].rstrip("\n") + "\nengine,mine\n"
    at.file_uploader(key="upload").set_value(("config.csv", config.encode(), "text/csv")).run()
    ok(at)
    texts = at.session_state["texts"]
    assert texts["engines.csv"] == engines and texts["config.csv"] == config
    sc = scenario_from_texts(texts, "medium")
    assert sc.engine.name == "mine"
    want = Planner(sc).exact().plan.usd_per_million_tokens
    assert want != Planner(scenario_from_texts(MEDIUM, "medium")).exact().plan.usd_per_million_tokens
    for _ in range(60):  # the solve runs in a worker; the page shows it when done
        if metric(at, "$ per million") == usd_m(want):
            break
        at.run()
    assert metric(at, "$ per million") == usd_m(want)
