"""Compare scenarios: named scenarios kept in the session, two side by side, export and import of the set."""
import streamlit as st

from ui import state, whatif_compare

st.set_page_config(page_title="Compare · GPU pipeline planner", page_icon="⚖️", layout="wide")
if "base_texts" not in st.session_state:
    # Only on a first visit: ensure() also re-creates the Planner page's dropped widget values, and set from
    # here (where those widgets are not drawn) the Planner page later shows its widgets' defaults instead
    # (reported to the lead; see ui/state.ensure).
    state.ensure()
whatif_compare.render()
