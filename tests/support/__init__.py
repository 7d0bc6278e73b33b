"""Helpers shared by Notefall's tests (MIDI builders, ...)."""
