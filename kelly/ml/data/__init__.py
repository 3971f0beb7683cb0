"""Training data for Kelly's five networks, built offline (see ``docs/data.md``).

=================  ===========================================================================
module             what it holds
=================  ===========================================================================
``store``          the data folder (``data_dir``, ``$KELLY_DATA_DIR``, ``./build/corpus``) and
                   the append-only JSON-lines manifests
``corpus``         music21's corpus (Bach chorales, Essen, O'Neill, Ryan, Aird, Palestrina)
                   converted once to MIDI with metadata and weak labels
``labels``         the weak valence/arousal/dominance proxies (mode, tempo, density, metre)
``midi``           fast MIDI reading into numpy (symusic; Kelly's reader as fallback), piano
                   rolls and pitch-class histograms
``targets``        the networks' target vectors measured from MIDI (notes, chords, groove,
                   expression) with masks for what the data cannot supervise
``split``          train/validation/test by piece (crc32 of the piece's group or id)
``external``       loaders for DEAM, Lakh MIDI, MAESTRO, Groove MIDI and EMOPIA on disk
``composed``       pieces Kelly composes for known emotions, with their exact V/A/D
``render``         those pieces rendered to audio (FluidSynth) for the recognizer
``training``       ``training_datasets(key, ...)``: the trainer's per-network datasets
                   (``kelly train --data corpus``)
=================  ===========================================================================

Nothing here is imported when Kelly composes; music21 and symusic are imported only
inside the functions that need them.
"""

from kelly.ml.data.split import SPLITS, split_of, split_records
from kelly.ml.data.store import data_dir, read_manifest
from kelly.ml.data.training import training_datasets  # imports torch only when called

__all__ = ["SPLITS", "data_dir", "read_manifest", "split_of", "split_records", "training_datasets"]
