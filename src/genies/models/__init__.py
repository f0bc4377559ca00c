"""Base models and what is computed from them once: the catalogue, materialising and loading,
device claiming, the text templates and the activation cache."""
