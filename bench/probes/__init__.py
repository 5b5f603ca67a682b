"""Probes: measurements of a model during training beyond its metrics (``lossbench probe``).

``escaping``: Tr(H Sigma) (SGD's escaping efficiency) and the right-hand side of eq. 19 of the
mixing paper, per loss, at chosen epochs.
"""

from bench.probes.escaping import EscapingTerms, escaping_terms, trace_of_product

__all__ = ["EscapingTerms", "escaping_terms", "trace_of_product"]
