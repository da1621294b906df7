"""Catalogue page: GPU, model and engine catalogues with price sources and dates (editable per session)."""
import streamlit as st

from ui import catalog_view, state

st.set_page_config(page_title="Catalogues · GPU pipeline planner", page_icon="📚", layout="wide")
state.ensure()
catalog_view.render()
