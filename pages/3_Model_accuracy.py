"""Model accuracy: predicted vs measured timings, the errors, the assumptions, and what-if engine factors;
and calibrating a profile from your own runs."""
import streamlit as st

from ui import accuracy, calibrate_view, state

st.set_page_config(page_title="Model accuracy · GPU pipeline planner", page_icon="🎯", layout="wide")
state.ensure()
accuracy.render()
calibrate_view.render()
