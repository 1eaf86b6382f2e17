"""Bit-exact numpy twins of the hardware blocks, one module per block, each with its contract."""
