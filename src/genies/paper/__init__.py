"""The paper's published evaluations, indexed and validated, every published table recomputed
from them, and the table of the published data-mixing runs (`mixing`)."""
