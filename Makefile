# Notefall developer entry points. Everything runs from a private .venv that these
# targets create, so a fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_MIDI := common/examples/prelude_in_c.mid
DEMO_PORT ?= 8000

.PHONY: demo test bench lint install clean browser

$(STAMP): pyproject.toml requirements/base.txt requirements/dev.txt requirements/server.txt requirements/desktop.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Notefall needs Python 3.11 or newer"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# --no-deps: the lock is complete; it leaves out tinysoundfont's unused pyaudio.
	$(PY) -m pip install --quiet --no-deps -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements/server.txt
	$(PY) -m pip install --quiet --no-deps -r requirements/desktop.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@mkdir -p out
	$(VENV)/bin/notefall render $(DEMO_MIDI) -o out/demo.mp4 --title "Prelude in C" --artist "J. S. Bach"
	@echo "Your video: $(CURDIR)/out/demo.mp4"
	@# Then the whole server on this machine (API, Redis, a worker, the scheduler) in
	@# out/stack, until Ctrl-C; its one line says where to sign up and where mail lands.
	$(VENV)/bin/notefall stack --data-dir out/stack --port $(DEMO_PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy common cli server desktop

# The browser-page tests drive Debian's chromium (Playwright's own browser download is not
# reachable from CI machines); installed once, as root, when it is missing.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	else echo "The browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi

browser: $(CHROMIUM)

test: lint browser
	$(VENV)/bin/pytest -n 2 --dist loadgroup -p tests.server.backends --durations=15

bench: $(STAMP)
	$(PY) -m bench.run
	$(PY) -m bench.server
	@# After bench.server: the render farm's section follows the server section.
	$(PY) -m bench.renders
	@# After bench.renders, which rewrites everything after its own section.
	$(PY) -m bench.desktop
	$(PY) -m bench.pages

clean:
	rm -rf $(VENV) out build *.egg-info
