"""The transformer composer (issue 12): an emotion-conditioned compound-word transformer.

A second :class:`~kelly.composer.Composer` beside the rule engines ("rules for structure,
the transformer for variation"). The package is split so that composing never pays for
what it does not use:

* :mod:`kelly.transformer.tokens` — :class:`~kelly.transformer.tokens.CompoundTokenizer`:
  a :class:`~kelly.song.Song` as compound-word tokens and back (numpy only);
* :mod:`kelly.transformer.grammar` — :class:`~kelly.transformer.grammar.Grammar`: the state
  machine of valid token sequences, the masks for constrained decoding (numpy only);
* the model, sampling, training and ONNX modules beside them (torch is imported only where
  training or export runs).

Nothing heavy is imported here; import the submodules you need. docs/transformer.md
describes the whole composer.
"""
