"""GPU pipeline planner: Streamlit dashboard. Entry point: `streamlit run app.py`.

This file is the navigation (main page "Planner", then every pages/*.py) and, run again by it, the main
page, which ui.planner_page draws (its inputs, solve state machine and result). The session-state keys
are listed in ui.keys.
"""

from ui import planner_page, state

if not state.route(__file__, "Planner"):
    planner_page.render()
