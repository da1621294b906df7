"""Fleet: the cheapest set of replicas for a demand (and a mix of requests), the demand curve, price what-ifs."""
import streamlit as st

from ui import fleet_view, state

st.set_page_config(page_title="Fleet · GPU pipeline planner", page_icon="🚚", layout="wide")
state.ensure()
fleet_view.render()
