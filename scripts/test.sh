#!/bin/sh
# Set up everything the tests need and run the whole suite.
# As root on Debian/Ubuntu it also installs the network lab's packages.
# Arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
LAB_PACKAGES="iproute2 nftables miniupnpd-nftables miniupnpc unbound knot knot-dnsutils coturn dnsutils iputils-ping curl tmux chromium fonts-dejavu-core"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing=""
    for pkg in $LAB_PACKAGES; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        echo "installing lab packages:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
fi
. scripts/venv.sh
exec "$venv/bin/python" -m pytest -n 2 -p no:cacheprovider "$@"
