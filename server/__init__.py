"""Notefall cloud: the FastAPI API (accounts so far; projects, renders, billing to come).

See docs/server.md for what exists and how to run it.
"""
