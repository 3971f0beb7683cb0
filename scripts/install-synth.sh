#!/usr/bin/env bash
# FluidSynth and a General MIDI soundfont, for `kelly render` and `kelly compose --wav`: Debian's
# fluidsynth and timgm6mb-soundfont. Composing never needs them; the audio tests skip without them.
# Also Debian's sound-icons (32 short real instrument notes), which `kelly ddsp train` learns from.
set -u
if [ ! -d /usr/share/sounds/sound-icons ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  if (apt-get install -y -qq sound-icons || (apt-get update -qq && apt-get install -y -qq sound-icons)) \
      >/dev/null 2>&1; then
    echo "kelly: installed Debian's sound-icons (recordings the DDSP voice trains on)"
  else
    echo "kelly: note: Debian's sound-icons is not installed; kelly ddsp train will learn without it"
  fi
fi
have_soundfont() {
  [ -n "${KELLY_SOUNDFONT:-}" ] && [ -r "${KELLY_SOUNDFONT}" ] && return 0
  for f in /usr/share/sounds/sf2/FluidR3_GM.sf2 /usr/share/sounds/sf2/TimGM6mb.sf2 \
           /usr/share/sounds/sf2/default-GM.sf2 /usr/share/soundfonts/*.sf2 /usr/share/soundfonts/*.sf3; do
    [ -r "$f" ] && return 0
  done
  return 1
}
if command -v fluidsynth >/dev/null 2>&1 && have_soundfont; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  if (apt-get install -y -qq fluidsynth timgm6mb-soundfont || (apt-get update -qq &&
      apt-get install -y -qq fluidsynth timgm6mb-soundfont)) >/dev/null 2>&1; then
    echo "kelly: installed FluidSynth and the TimGM6mb soundfont (fluidsynth, timgm6mb-soundfont)"
    exit 0
  fi
fi
echo "kelly: FluidSynth or a General MIDI soundfont is missing; install Debian's fluidsynth and" \
     "timgm6mb-soundfont (as root: apt-get install fluidsynth timgm6mb-soundfont), or give" \
     "--soundfont FILE.sf2. Until then kelly render/compose --wav cannot make audio and the render" \
     "audio tests are skipped (plots and MusicXML work without them)."
exit 0
