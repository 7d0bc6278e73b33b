"""``python -m notefall.desktop``."""

from .app import main

raise SystemExit(main())
