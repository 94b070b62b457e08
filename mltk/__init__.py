"""mltk: one command line for ten recent machine-learning research methods."""

__version__ = "0.1.0"
