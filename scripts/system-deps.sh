#!/usr/bin/env bash
# System packages the test suite drives: Debian's Chromium (browser tests; never a downloaded browser),
# Xvfb, xdotool and xwd (the live window under a virtual display). Installs only what is missing,
# only where apt-get and root are available; elsewhere it says what to install and the tests that
# need them skip with that reason.
set -u
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v Xvfb >/dev/null || need+=(xvfb)
command -v xdotool >/dev/null || need+=(xdotool)
command -v xwd >/dev/null || need+=(x11-apps)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || echo "warning: apt-get could not install ${need[*]}; the tests that need them will be skipped" >&2
else
  echo "note: install ${need[*]} (Debian/Ubuntu: sudo apt-get install ${need[*]}) to run the browser and window tests" >&2
fi
exit 0
