#!/bin/sh
# Installs the Notefall server into a virtual environment, from the locks in requirements/.
# The Dockerfile's build stage runs it, and so does tests/test_deploy_image.py (which reads
# the Dockerfile's RUN lines), so what the image holds is what the test starts.
#
#   install-server.sh deps PREFIX      a new venv at PREFIX with every pinned dependency
#   install-server.sh project PREFIX   the notefall package itself (from the current folder)
#
# --no-deps everywhere: the locks are complete, and they leave out tinysoundfont's unused
# pyaudio (which needs PortAudio headers to build). FFmpeg comes from the locked
# imageio-ffmpeg wheel, the same static build development uses (common/video/ffmpeg.py).
set -eu

step=${1:?usage: install-server.sh deps|project PREFIX}
prefix=${2:?usage: install-server.sh deps|project PREFIX}
# The build backend, pinned like everything else (pyproject's license field needs a recent one).
SETUPTOOLS=setuptools==84.2.1

case "$step" in
deps)
	python3 -m venv "$prefix"
	"$prefix/bin/python" -m pip install --quiet --no-deps -r requirements/server.txt "$SETUPTOOLS"
	;;
project)
	# Not editable, and without build isolation: nothing unpinned is fetched to build it.
	"$prefix/bin/python" -m pip install --quiet --no-deps --no-build-isolation .
	# FFmpeg must run where the image runs, before anyone renders with it.
	"$prefix/bin/python" -c 'from notefall.common.video.ffmpeg import ffmpeg_exe; print("FFmpeg:", ffmpeg_exe())'
	;;
*)
	echo "install-server.sh: unknown step '$step' (deps or project)" >&2
	exit 2
	;;
esac
