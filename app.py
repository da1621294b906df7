"""GPU pipeline planner: Streamlit dashboard. Entry point: `streamlit run app.py`.

This file is the navigation (main page "Planner", then every pages/*.py) and, run again by it, the main
page, which ui.planner_page draws (its inputs, solve state machine and result). The session-state keys
are listed in ui.keys.

`streamlit run` finds `app` below and serves this same file through it (Streamlit's ASGI entry point,
Streamlit >= 1.53), whose startup hook warms the server up while the first browser is still loading the
page (ui.prewarm), and which counts the browsers loading the page, so that sessions opened together get their
headlines before anyone's charts (ui.first_view), and which lets the browser load the headline's frontend
code with the page (ui.preload). Without it (an older Streamlit), the file is served as a
plain script, without either.
"""

from streamlit.runtime.scriptrunner import get_script_run_ctx

from ui import first_view, preload, prewarm

try:
    import uvicorn  # noqa: F401  (the ASGI server `streamlit run` uses for an App)
    from starlette.middleware import Middleware
    from streamlit.starlette import App
except ImportError:
    App = None

if get_script_run_ctx(suppress_warning=True) is None:  # imported by the server, not a session's run
    if App is not None:
        app = App(__file__, lifespan=prewarm.lifespan, middleware=[Middleware(first_view.CountPageLoads),
                                                                 Middleware(preload.PreloadChunks)])
else:
    from ui import planner_page, state

    if not state.route(__file__, "Planner"):
        planner_page.render()
