"""Music theory: pitch spelling, keys and modes, chords, roman numerals, voice leading."""
