#!/usr/bin/env bash
# Renders the default "thinking" clips into voices/thinking/ with espeak-ng + sox, offline.
# Each clip: 24 kHz, mono, 16-bit, edge silence trimmed, <= 3 s (entropi also trims, loudness-
# matches and fades them when it loads them). Re-run after changing the lines below.
set -euo pipefail
cd "$(dirname "$0")/.."
voice="${THINKING_VOICE:-en-us+f3}"  # same espeak-ng voice as voices/demo_voice.wav
out=voices/thinking
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
lines=(
  "Hmm, let me think."
  "One moment."
  "Give me a second."
  "Let me see."
  "Hmm, okay, just a moment."
)
for i in "${!lines[@]}"; do
  slug=$(printf '%s' "${lines[$i]}" | tr 'A-Z' 'a-z' | tr -cs 'a-z' '_' | sed 's/_$//')
  file=$(printf '%s/%02d_%s.wav' "$out" "$((i + 1))" "$slug")
  espeak-ng -v "$voice" -s 150 -w "$tmp/s.wav" "${lines[$i]}"
  # silence 1 0.01 1%: trim leading silence; reverse twice to trim the tail as well.
  sox "$tmp/s.wav" -r 24000 -c 1 -b 16 "$file" \
    silence 1 0.01 1% reverse silence 1 0.01 1% reverse norm -3
  seconds=$(soxi -D "$file")
  if awk -v s="$seconds" 'BEGIN { exit !(s > 3.0) }'; then
    echo "$file is ${seconds} s, over 3 s: shorten the line" >&2; exit 1
  fi
  echo "$file ${seconds}s"
done
