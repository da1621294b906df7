"""What every What-if tab needs: the scenario, its cache keys, the base result and whether analyses run
without a click."""
from __future__ import annotations

from dataclasses import dataclass

from planner import Scenario

from . import whatif_jobs as jobs


@dataclass(frozen=True)
class Ctx:
    sc: Scenario
    texts_key: tuple
    cat_key: tuple
    base: jobs.BaseResult
    auto: bool
    why_not_auto: str

    def key(self, *parts) -> tuple:
        return (self.texts_key, self.cat_key, *parts)
