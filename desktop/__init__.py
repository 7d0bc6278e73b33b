"""Notefall desktop studio (PySide6): projects, live preview, render settings, local and
cloud renders. Start it with ``notefall desktop``; see docs/desktop.md."""
