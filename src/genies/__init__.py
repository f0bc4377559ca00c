"""genies: a reproducible pipeline for the GENIES reward-model generalisation benchmark."""

from genies.errors import GeniesError

__all__ = ["GeniesError"]
__version__ = "0.1.0"
