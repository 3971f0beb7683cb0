"""The composing engines, one module each; :mod:`kelly.generator` runs them in order.

Every engine is a plain function of a :class:`~kelly.engines.context.Plan` and a
``numpy.random.Generator``; none keeps state between calls.
"""
