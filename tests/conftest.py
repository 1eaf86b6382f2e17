"""Test-session settings shared by every test module."""

import os

# One BLAS thread per process, set before any test imports numpy: pytest-xdist already runs one
# worker per core, and on a busy shared machine two BLAS threads per worker spin against each
# other (the real-trace prefill measured 10 to 20 times slower). model/main.py does the same.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
