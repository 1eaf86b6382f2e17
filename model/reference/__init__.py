"""The float ReSV reference: SimHash, leader clustering and the exact WiCSum rule (the algorithm)."""
