"""Headlines first, server-wide (issue 11 item 7: several people opening the app at once).

When several browsers open the app together, what each waits for is mostly browser CPU: every page loads
Streamlit's frontend, and once its headline is out it draws the inputs, grids and Plotly charts, which keeps
the machine busy while the other pages are still loading. So a session that has sent its first headline
holds back the rest of its first view while other pages opened before it are still on their way to their
own headline, and GRACE_S after the latest of those was sent (its browser has to draw it), for at most
`max_wait_s()` in all (nobody waits longer than that for the inputs and charts).

Which pages are on their way: the server counts the browsers that asked for the app's page (`CountPageLoads`,
an ASGI middleware on app.py's st.App) and the first views that have sent their headline; a page request
that no headline followed within `FORGET_S` (a browser closed while loading, or a non-browser client) is
forgotten. Without the middleware (Streamlit without st.App, AppTest) nothing is counted and no session
waits beyond the 1 s first-view pause of ui.planner_page."""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque

log = logging.getLogger(__name__)
# The longest a session's inputs and charts are held back for other sessions' headlines. The last page's
# headline comes once the browsers have done all the work sent before it, so what the first pages draw after
# their headline delays the late ones. Six sessions at once on the 2-core machine (benchmarks/many_users.py
# --no-distinct, 5 alternating pairs, eighth session, 2026-11-30): at 8 s, first result medians 12.9, 14.8,
# 13.3, 14.8, 16.5 s (max 14.1, 16.2, 14.0, 16.8, 17.1 s); at 3 s 21.7, 16.0, 18.0, 15.2, 17.9 s (max 30.1, 30.0,
# 19.4, 16.2, 25.8 s: the first pages' rest, released after 3 s, held the last two pages back by 10 s or more).
# (An earlier day's runs had 3 s ahead of 6 s and 15 s, within that day's larger noise.) With one page loading
# nobody waits beyond the first view's 1 s pause.
MAX_WAIT_S = 8.0
# After another session's headline is sent, its browser still has to draw it: the others go on holding this
# long after it (measured with 3 pages at once on 2 loaded cores: the last page drew its headline 17 s after
# it was sent when the other two pages' charts arrived 1 s after it).
GRACE_S = 1.5
FORGET_S = 30.0  # a page request with no headline after it this long is no longer waited for
STEP_S = 0.1


def seconds_setting(name: str, default: float, maximum: float) -> float:
    """A number of seconds in 0..maximum from the environment variable `name` (blank: `default`); anything
    else is logged and `default` used."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if 0.0 <= value <= maximum:
        return value
    log.warning("%s=%r is not a number of seconds in 0..%g; using %g", name, raw, maximum, default)
    return default


def max_wait_s() -> float:
    """PLANNER_HEADLINES_FIRST_S (seconds, 0 turns the wait off), else MAX_WAIT_S."""
    return seconds_setting("PLANNER_HEADLINES_FIRST_S", MAX_WAIT_S, 60.0)


class FirstViews:
    """Page requests not yet followed by a first view's headline, oldest first."""

    def __init__(self, forget_s: float = FORGET_S):
        self.forget_s = forget_s
        self._lock = threading.Lock()
        self._loading: deque[float] = deque()  # when each page was requested
        self.last_sent = float("-inf")  # when the latest first-view headline was sent

    def page_requested(self, now: float | None = None) -> None:
        with self._lock:
            self._loading.append(time.monotonic() if now is None else now)

    def headline_sent(self) -> None:
        """A session's first view has its headline out (or has ended without one): one page fewer to wait for."""
        with self._lock:
            self.last_sent = time.monotonic()
            if self._loading:
                self._loading.popleft()

    def loading(self, now: float | None = None) -> int:
        """Pages requested and still waiting for their first headline."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._loading and now - self._loading[0] > self.forget_s:
                self._loading.popleft()
            return len(self._loading)

    def hold(self, min_s: float, max_s: float, sleep=time.sleep) -> float:
        """Called right after this session's headline was sent: wait at least `min_s`, and beyond it while
        other pages are loading or another session's headline was sent less than GRACE_S ago, up to `max_s`
        in all; returns the seconds waited."""
        t0 = time.monotonic()
        sleep(min_s)
        while time.monotonic() - t0 < max_s:
            now = time.monotonic()
            if not self.loading(now) and not (self.last_sent > t0 and now - self.last_sent < GRACE_S):
                break
            sleep(STEP_S)
        return time.monotonic() - t0


first_views = FirstViews()


class CountPageLoads:
    """ASGI middleware: every GET of the app's main page is a browser on its way to a first headline."""

    def __init__(self, app, views: FirstViews | None = None):
        self.app = app
        self.views = views if views is not None else first_views

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "GET" and is_main_page(scope.get("path", "")):
            self.views.page_requested()
        await self.app(scope, receive, send)


def is_main_page(path: str) -> bool:
    from streamlit import config

    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    return path.rstrip("/") == (f"/{base}" if base else "")
