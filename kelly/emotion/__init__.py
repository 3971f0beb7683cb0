"""Emotions: the PAD thesaurus, text reading and the EmotionState that flows onward."""

from kelly.emotion.state import EmotionState, Evidence, SecondaryEmotion

__all__ = ["EmotionState", "Evidence", "SecondaryEmotion"]
