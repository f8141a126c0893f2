#!/bin/bash
# Install the system packages bindep.txt lists for tests and are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q bindep >/dev/null
missing=$(bindep -b test || true)
if [ -n "$missing" ]; then
    echo "installing system packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >/dev/null
fi
