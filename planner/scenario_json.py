"""A scenario as one JSON file: the texts of its config folder's files bundled, for export and import."""
from __future__ import annotations

import json

from .errors import InputError, Problem

SCENARIO_FORMAT = "gpu-pipeline-planner-scenario/1"
SCENARIO_FILES = ("config.csv", "gpu_pool.csv", "network_bandwidth.csv", "network_by_type.csv")
# A scenario may carry its own engine profiles (e.g. written by `python -m planner calibrate`), in the
# catalogue's format; they are added to the catalogue's for this scenario only.
ENGINE_FILES = ("engines.csv", "engine_gpus.csv")


def scenario_texts_to_json(texts: dict[str, str], name: str) -> str:
    """Bundle a config folder's files into one scenario file that `scenario_from_json` re-imports."""
    return json.dumps({"format": SCENARIO_FORMAT, "name": name, "files": texts}, indent=1)


def scenario_texts_from_json(data: str | bytes, file: str = "scenario.json") -> tuple[str, dict[str, str]]:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(Problem(f"not a scenario file (invalid JSON: {exc})", file)) from exc
    if not isinstance(doc, dict) or doc.get("format") != SCENARIO_FORMAT:
        raise InputError(Problem(f"not a scenario file of format {SCENARIO_FORMAT}", file))
    files = doc.get("files")
    allowed = set(SCENARIO_FILES + ENGINE_FILES)
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise InputError(Problem("'files' must map file names to text", file))
    unknown = set(files) - allowed
    if unknown:
        raise InputError(Problem(f"unexpected files {sorted(unknown)} (allowed: {sorted(allowed)})", file))
    return str(doc.get("name", "imported")), dict(files)
