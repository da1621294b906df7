"""What-if analysis of the current scenario: Pareto frontier, single-type baselines, price sensitivity,
quantization loss, spot prices and availability caps, latency SLOs."""
import streamlit as st

from ui import state, whatif_view

st.set_page_config(page_title="What if · GPU pipeline planner", page_icon="🔀", layout="wide")
if "base_texts" not in st.session_state:
    # Only on a first visit: ensure() also re-creates the Planner page's dropped widget values, and set from
    # here (where those widgets are not drawn) the Planner page later shows its widgets' defaults instead
    # (reported to the lead; see ui/state.ensure).
    state.ensure()
whatif_view.render()
