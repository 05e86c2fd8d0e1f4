#!/usr/bin/env bash
# Install the system packages the deploy/e2e/collect/gate/loop tests need: Debian's Prometheus and
# Alertmanager binaries, redis-server (tests/gate/test_state_redis.py starts its own on loopback),
# and chromium with chromium-driver (tests/loop/test_ui.py drives the /ui page headless through
# Selenium; no browser is downloaded). Idempotent: does nothing when all the binaries are present.
# The packages try to start system services; those do not run in CI containers and the tests
# start the binaries themselves on loopback, so service start failures are ignored.
set -euo pipefail

need=()
[ -x /usr/bin/prometheus ] || need+=(prometheus)
[ -x /usr/bin/prometheus-alertmanager ] || need+=(prometheus-alertmanager)
[ -x /usr/bin/redis-server ] || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-system-deps: prometheus, prometheus-alertmanager, redis-server, chromium and chromium-driver" \
       "already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

export DEBIAN_FRONTEND=noninteractive
# Keep the packages from starting their services (policy-rc.d 101 = action forbidden).
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"

/usr/bin/prometheus --version 2>&1 | head -n1
/usr/bin/prometheus-alertmanager --version 2>&1 | head -n1
/usr/bin/redis-server --version 2>&1 | head -n1
/usr/bin/chromium --version 2>&1 | head -n1
/usr/bin/chromedriver --version 2>&1 | head -n1
