"""Kelly's real-time engine and its audio-side building blocks.

Audio arrives in fixed-size blocks (512 samples at 48 kHz is 10.67 ms); every block must be
handled well inside that time, so the pieces below preallocate what they need when they are
built and do (almost) no allocation per block:

:mod:`kelly.realtime.ringbuffer`
    :class:`~kelly.realtime.ringbuffer.SpscRing`, a lock-free single-producer,
    single-consumer ring of fixed-width rows with an integer stamp per row: the hand-over
    from an audio callback thread to the engine thread.
:mod:`kelly.realtime.lookahead`
    :class:`~kelly.realtime.lookahead.LookaheadBuffer`, a delay line of exactly
    ``lookahead`` samples, so that analysis can look ahead of what is played.
:mod:`kelly.realtime.frontend`
    :class:`~kelly.realtime.frontend.MelFrontEnd`, the streaming version of the
    recognizer's front-end :func:`kelly.emotion.audio.log_mel_frames` (same frames,
    produced block by block), and :func:`~kelly.realtime.frontend.budget_s`.
:mod:`kelly.realtime.audio_in`
    Where blocks come from: :class:`~kelly.realtime.audio_in.WavBlockSource` (a sound
    file), :class:`~kelly.realtime.audio_in.DeviceBlockSource` (a sound card, through
    sounddevice) and :func:`~kelly.realtime.audio_in.parse_audio_in` (``--audio-in``).

The engine itself (:mod:`kelly.realtime.engine`), the music it plays (:mod:`kelly.realtime.live`),
the clock and MIDI output sit beside these and use them.

Nothing heavy is imported here: librosa, soxr, soundfile and sounddevice are imported by the
modules that need them, when they are used.
"""
