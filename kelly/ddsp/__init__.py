"""Kelly's DDSP voice: a learned timbre that renders MIDI to audio and follows the emotion.

Differentiable digital signal processing (Engel et al., ICLR 2020): a small network reads
pitch (f0) and loudness frame by frame and writes the controls of two synthesizers, a
harmonic additive synth and filtered noise; their sum, optionally through a reverb, is
the sound. Kelly's decoder also reads the emotion (valence, arousal, dominance).

Modules, one job each:

* :mod:`kelly.ddsp.core`: the contract (sample rate, frame rate, sizes, scalings) and the
  numpy processors (:class:`~kelly.ddsp.core.Harmonic`, :class:`~kelly.ddsp.core.FilteredNoise`,
  :class:`~kelly.ddsp.core.Reverb`), each ``get_controls`` then ``get_signal``;
* :mod:`kelly.ddsp.torch_synths`: the same processors in torch, differentiable, for training;
* :mod:`kelly.ddsp.features`: f0 and A-weighted loudness: one function for training and rendering;
* :mod:`kelly.ddsp.decoder`: the GRU decoder (torch) and its batched numpy twin read from RTNeural JSON;
* :mod:`kelly.ddsp.losses`: the multi-scale spectral loss and the DDSP paper's measures;
* :mod:`kelly.ddsp.data`: the training audio (sound-icons, music21's test recording, soundfont notes);
* :mod:`kelly.ddsp.train`: training with checkpoints and resume;
* :mod:`kelly.ddsp.export`: ONNX and RTNeural JSON, validated against torch;
* :mod:`kelly.ddsp.voice`: a trained voice rendering a :class:`~kelly.song.Song`.

Torch is imported only by the training, torch-synth and export modules: rendering runs on numpy.
"""
