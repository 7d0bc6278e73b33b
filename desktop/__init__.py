"""Notefall desktop app (PySide6), built in a later issue."""
