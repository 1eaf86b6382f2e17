"""cocotb testbenches, the block file interface (``python -m sim.run``) and benchmarks."""
