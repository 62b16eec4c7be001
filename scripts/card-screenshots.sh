#!/bin/sh
# Renders the README's card screenshots (docs/cards/*.png) from the JSON the stand-in
# WeCom received in the end-to-end tests: the tests write each card as JSON and as a
# self-contained HTML page (opsbot_fakes::card_html) into $OPSBOT_CARD_SHOTS, and
# headless Chromium photographs the pages. Needs Prometheus Alertmanager and Chromium
# and an emoji font (apt-get install prometheus-alertmanager chromium fonts-noto-color-emoji).
set -eu
cd "$(dirname "$0")/.."
out=docs/cards
shots=$(mktemp -d)
trap 'rm -rf "$shots"' EXIT
chromium=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$chromium" ] || { echo "chromium not found: apt-get install chromium" >&2; exit 1; }

OPSBOT_CARD_SHOTS="$shots" OPSBOT_TEST_REQUIRE_SERVICES=1 \
    cargo test -p opsbot --test alerts alert_card_buttons_run_once_as_the_clicker
OPSBOT_CARD_SHOTS="$shots" cargo test -p opsbot-http --test wecom_cards

mkdir -p "$out"
for page in "$shots"/*.html; do
    name=$(basename "$page" .html)
    "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --force-device-scale-factor=2 --window-size=440,470 \
        --screenshot="$out/$name.png" "file://$page" 2>/dev/null
    cp "$shots/$name.json" "$out/$name.json"
    echo "$out/$name.png"
done
