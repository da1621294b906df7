"""Performance: measured solve times per scenario and method, the seed-style baseline beside ours, and
the scaling curves that show where solving stops being interactive (from benchmarks/*.csv)."""
import streamlit as st

from ui import perf_view, state

st.set_page_config(page_title="Performance · GPU pipeline planner", page_icon="⏱️", layout="wide")
state.ensure()
perf_view.render()
