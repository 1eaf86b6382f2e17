"""Numpy golden model of ReSV and bit-exact integer twins of the DRE blocks."""
