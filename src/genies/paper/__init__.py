"""The paper's published evaluations, indexed and validated, and every published table recomputed
from them."""
