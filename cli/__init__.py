"""The ``notefall`` command line."""
