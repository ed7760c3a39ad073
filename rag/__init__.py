"""Retrieval-augmented question answering when knowledge conflicts."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
