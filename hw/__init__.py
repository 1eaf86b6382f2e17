"""Amaranth components of the dynamic KV-cache retrieval engine (DRE)."""
