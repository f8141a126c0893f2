#!/bin/bash
# The test command: installs what the tests need, then runs every tox env
# of the default envlist (style, types, unit, unit under eventlet, the docs
# built with warnings as errors, the functional tests against real servers,
# and the fault suite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-bindep.sh
python3 -m pip install -q 'tox>=4.0.0' >/dev/null
exec python3 -m tox -e pep8,mypy,py3,eventlet,docs,functional,reliability "$@"
