"""Editing one cell of the pool table writes back only that cell (issue 13, item 5).

Before: one price edit rewrote every row of gpu_pool.csv with every datasheet column filled in, so the
other GPUs lost the catalogue's price source and date, network_bandwidth.csv was replaced by
network_by_type.csv, and later catalogue price edits no longer reached that pool. These tests drive the
same functions the app's pool editor uses (ui.state.load -> apply_delta -> build_texts)."""
from __future__ import annotations

import dataclasses

import pytest

from planner import scenario_from_texts
from planner.catalog import CONFIG_DIR, Catalog, load_catalog
from ui import scenario_texts as T


def _edit(name: str, delta: dict) -> tuple[dict[str, str], dict[str, str]]:
    """The bundled scenario's texts and the texts after the pool edit `delta` (a data_editor edit state)."""
    texts = T.load_bundled_texts(name)
    sc = scenario_from_texts(texts, name)
    base_pool = T.pool_frame(sc, texts[T.POOL])
    links = T.scenario_links(sc)
    pool = T.apply_delta(base_pool, delta)
    net = T.net_frame(T.pool_types(pool), links, sc.pool.default_link_gb_per_s)
    values = {"unchanged": True}
    return texts, T.build_texts(texts, values, values, base_pool, pool, links, net)


def _specs(texts: dict[str, str], catalog: Catalog | None = None) -> dict:
    return {e.name: (e.count, e.spec) for e in scenario_from_texts(texts, "edited", catalog).pool.entries}


def test_one_price_edit_keeps_the_other_rows_catalogue_price_source_and_the_network_file():
    # small: A100 and V100 with no price column, so both take the catalogue's price with its source and date
    before, after = _edit("small", {"edited_rows": {0: {"price_usd_per_hour": 9.5}}})
    assert after[T.NET_GPU] == before[T.NET_GPU] and T.NET_TYPE not in after
    old, new = _specs(before), _specs(after)
    assert new["A100"][1].price_usd_per_hour == 9.5
    assert new["A100"][1].price_source == "gpu_pool.csv row 2"
    v100 = load_catalog().gpus["V100"]
    assert new["V100"] == old["V100"]
    assert (new["V100"][1].price_source, new["V100"][1].price_date) == (v100.price_source, v100.price_date)
    # the file itself: one new cell, every other cell as it was (no memory, TFLOPs or bandwidth columns added)
    assert after[T.POOL].splitlines() == ["gpu_type,count,memory_gb,price_usd_per_hour", "A100,4,80,9.5",
                                          "V100,4,32,", "H100,2,80,"]


def test_a_later_catalogue_price_edit_still_reaches_the_rows_not_edited():
    before, after = _edit("small", {"edited_rows": {0: {"count": 2}}})
    # a count edit cannot keep the per-GPU matrix (one row per GPU): it becomes links by type pair, as shown
    assert T.NET_GPU not in after and T.NET_TYPE in after and T.NET_GPU in before
    cat = load_catalog(CONFIG_DIR)
    v100 = cat.gpus["V100"]
    cheaper = dataclasses.replace(cat, gpus={**cat.gpus, "V100": dataclasses.replace(v100, price_usd_per_hour=1.25)})
    specs = _specs(after, cheaper)
    assert specs["A100"][0] == 2
    assert specs["V100"][1].price_usd_per_hour == 1.25


def test_edit_keeps_stated_price_sources_of_other_rows_and_drops_the_edited_rows():
    # llama70b-chat states each price's source and date in the pool file itself
    before, after = _edit("llama70b-chat", {"edited_rows": {1: {"price_usd_per_hour": 2.0}}})
    old, new = _specs(before), _specs(after)
    assert new["H100-SXM"] == old["H100-SXM"] and new["L40S"] == old["L40S"]
    assert "Modal" in new["H100-SXM"][1].price_source
    a100 = new["A100-80GB-SXM"][1]
    assert (a100.price_usd_per_hour, a100.price_source, a100.price_date) == (2.0, "gpu_pool.csv row 3", "")
    assert after[T.NET_TYPE] == before[T.NET_TYPE]


def test_seed_price_column_name_is_kept():
    # medium spells the price 'dollar_per_hour' (the seed's name): the edit goes into that column
    before, after = _edit("medium", {"edited_rows": {2: {"price_usd_per_hour": 0.45}}})
    lines = after[T.POOL].splitlines()
    assert lines[0] == before[T.POOL].splitlines()[0] == "gpu_type,count,memory_gb,dollar_per_hour"
    assert lines[3] == "A10,12,48,0.45"
    assert _specs(after)["A10"][1].price_usd_per_hour == 0.45
    assert after[T.NET_GPU] == before[T.NET_GPU]


def test_added_row_gets_only_what_was_typed_and_deleted_row_text_does_not_leak():
    before, after = _edit("small", {"deleted_rows": [0], "added_rows": [{"gpu_type": "H100-SXM", "count": 4}]})
    assert after[T.POOL].splitlines()[1:] == ["V100,4,32", "H100,2,80", "H100-SXM,4,"]
    specs = _specs(after)
    assert specs["H100-SXM"][1] == load_catalog().gpus["H100-SXM"]
    assert set(specs) == {"V100", "H100", "H100-SXM"}


@pytest.mark.parametrize("name", ["small", "llama70b-chat", "realistic", "medium"])
def test_no_edit_changes_nothing(name):
    before, after = _edit(name, {})
    assert after == before


def test_emptied_cell_goes_back_to_the_catalogue():
    # realistic states every price; emptying the L40S price makes it the catalogue's again
    _, after = _edit("realistic", {"edited_rows": {2: {"price_usd_per_hour": None}}})
    specs = _specs(after)
    cat = load_catalog().gpus["L40S"]
    assert (specs["L40S"][1].price_usd_per_hour, specs["L40S"][1].price_source) == (cat.price_usd_per_hour,
                                                                                    cat.price_source)
