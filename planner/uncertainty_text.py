"""The prediction range and extrapolations of a summary as lines of text (CLI output)."""
from __future__ import annotations


def range_lines(s: dict) -> list[str]:
    """'range: ...' and one 'extrapolation: ...' line each, from summary.json's keys (none if absent)."""
    if "extrapolations" not in s:
        return []
    parts = []
    for key, label, fmt in (("tokens_per_s", "tokens/s", "{:,.0f}"), ("ttft_ms", "TTFT ms", "{:,.0f}"),
                            ("tpot_ms", "TPOT ms", "{:,.1f}")):
        lo, hi = s.get(f"{key}_low"), s.get(f"{key}_high")
        if lo is not None and hi is not None:
            parts.append(f"{label} {fmt.format(lo)}-{fmt.format(hi)}")
    lines = []
    if parts:
        lines.append("likely range (from the profile's errors on the closest measured data): " + " | ".join(parts))
    else:
        lines.append("no range: no measured data behind this engine profile covers these figures")
    lines += [f"extrapolation: {e}" for e in s["extrapolations"]]
    return lines
