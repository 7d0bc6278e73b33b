"""Readable names for the devices in the session list and the activity log.

The stored User-Agent is kept as sent (it is evidence); people recognise "Firefox on
Windows" far better than forty tokens of it, so pages show a name and keep the raw string
in a tooltip.
"""

from __future__ import annotations

import re

UNKNOWN_DEVICE_NAME = "Unknown device"

# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS: tuple[tuple[str, str], ...] = (
    (r"\bEdg(?:e|A|iOS)?/", "Edge"),
    (r"\bOPR/|\bOpera\b", "Opera"),
    (r"\bSamsungBrowser/", "Samsung Internet"),
    (r"\bFirefox/|\bFxiOS/", "Firefox"),
    (r"\bHeadlessChrome/", "Headless Chrome"),
    (r"\bChromium/", "Chromium"),
    (r"\bChrome/|\bCriOS/", "Chrome"),
    (r"\bVersion/[\d.]+.*\bSafari/", "Safari"),
)
_SYSTEMS: tuple[tuple[str, str], ...] = (
    (r"\biPhone\b", "iPhone"),
    (r"\biPad\b", "iPad"),
    (r"\bAndroid\b", "Android"),
    (r"\bCrOS\b", "ChromeOS"),
    (r"\bWindows\b", "Windows"),
    (r"\bMac OS X\b|\bMacintosh\b", "macOS"),
    (r"\bLinux\b", "Linux"),
)
# Programs rather than browsers: the desktop app's HTTP library, curl and friends.
_PROGRAMS: tuple[tuple[str, str], ...] = (
    (r"^python-httpx/", "Notefall Desktop or a script (python-httpx)"),
    (r"^python-requests/", "A script (python-requests)"),
    (r"^curl/", "curl"),
    (r"^Wget/", "Wget"),
    (r"^testclient$", "Test client"),
)


def device_name(user_agent: str | None) -> str:
    """ "Firefox on Windows", "Safari on iPhone", "curl", or the agent itself, shortened."""
    if not user_agent or not user_agent.strip():
        return UNKNOWN_DEVICE_NAME
    agent = user_agent.strip()
    for pattern, name in _PROGRAMS:
        if re.search(pattern, agent):
            return name
    browser = next((name for pattern, name in _BROWSERS if re.search(pattern, agent)), None)
    system = next((name for pattern, name in _SYSTEMS if re.search(pattern, agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or f"A browser on {system}"
    return agent if len(agent) <= 60 else agent[:57] + "…"
