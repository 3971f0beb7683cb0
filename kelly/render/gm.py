"""General MIDI drum names (channel 10 key map), for plots and percussion scores."""

from __future__ import annotations

#: GM percussion key → short name.
DRUM_NAMES: dict[int, str] = {
    27: "High Q", 28: "Slap", 29: "Scratch push", 30: "Scratch pull", 31: "Sticks", 32: "Square click",
    33: "Metronome click", 34: "Metronome bell",
    35: "Kick 2", 36: "Kick", 37: "Side stick", 38: "Snare", 39: "Clap", 40: "Snare 2", 41: "Low floor tom",
    42: "Closed hi-hat", 43: "High floor tom", 44: "Pedal hi-hat", 45: "Low tom", 46: "Open hi-hat",
    47: "Low-mid tom", 48: "Hi-mid tom", 49: "Crash", 50: "High tom", 51: "Ride", 52: "China", 53: "Ride bell",
    54: "Tambourine", 55: "Splash", 56: "Cowbell", 57: "Crash 2", 58: "Vibraslap", 59: "Ride 2", 60: "High bongo",
    61: "Low bongo", 62: "Mute high conga", 63: "Open high conga", 64: "Low conga", 65: "High timbale",
    66: "Low timbale", 67: "High agogo", 68: "Low agogo", 69: "Cabasa", 70: "Maracas", 71: "Short whistle",
    72: "Long whistle", 73: "Short guiro", 74: "Long guiro", 75: "Claves", 76: "High wood block",
    77: "Low wood block", 78: "Mute cuica", 79: "Open cuica", 80: "Mute triangle", 81: "Open triangle",
    82: "Shaker", 83: "Jingle bell", 84: "Bell tree", 85: "Castanets", 86: "Mute surdo", 87: "Open surdo",
}


def drum_name(key: int) -> str:
    """The GM name of a percussion key, or ``"Drum N"``."""
    return DRUM_NAMES.get(int(key), f"Drum {int(key)}")
