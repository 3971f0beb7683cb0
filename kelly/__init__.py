"""Kelly: an emotion-to-music companion.

Text, audio or biometrics become a valence/arousal/dominance emotion, which becomes
multi-track MIDI with an explanation of every musical choice.
"""

__version__ = "0.1.0"
