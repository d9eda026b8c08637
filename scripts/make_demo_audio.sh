#!/usr/bin/env bash
# Renders the bundled demo audio with espeak-ng + sox (Debian packages), offline.
# voices/demo_voice.wav: 3 s voice prompt for the tiny demo model.
# voices/demo_input.wav: ~40 s of a "user" talking with pauses, the demo's microphone.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
say() { espeak-ng -v "$1" -s 150 -w "$tmp/s.wav" "$2"; sox "$tmp/s.wav" -r 24000 -c 1 -b 16 "$3" norm -3; }
say en-us+f3 "Hello there. I am Ada, and this is what I sound like." "$tmp/voice.wav"
sox "$tmp/voice.wav" voices/demo_voice.wav trim 0 3
lines=(
  "Hi Ada. I had a long day at work today."
  "I am planning a trip to the mountains next week with my friend Maria."
  "Can you remind me to book the train on Friday?"
  "She loves jazz, so maybe we can find a concert there."
  "I feel a bit tired, but happy about the new project."
  "What do you think I should pack for cold weather?"
  "Thanks. Let us talk about music for a moment."
  "Okay, that is all for now. Good night."
)
parts=()
for i in "${!lines[@]}"; do
  say en-us "${lines[$i]}" "$tmp/l$i.wav"
  sox -n -r 24000 -c 1 -b 16 "$tmp/p$i.wav" trim 0 "$((2 + i % 3)).5"
  parts+=("$tmp/l$i.wav" "$tmp/p$i.wav")
done
sox "${parts[@]}" voices/demo_input.wav
soxi -D voices/demo_voice.wav voices/demo_input.wav
