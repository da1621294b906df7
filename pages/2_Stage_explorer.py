"""Stage explorer: memory breakdown, compute/memory/link time and the bound of one pipeline stage."""
import streamlit as st

from ui import explorer, state

st.set_page_config(page_title="Stage explorer · GPU pipeline planner", page_icon="🔬", layout="wide")
state.ensure()
explorer.render()
