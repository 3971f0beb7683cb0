"""One module per ``kelly`` sub-command; each defines ``register(subparsers)``."""
