"""Evaluation: the baselines ReSV is compared with, retrieval metrics, KV memory accounting."""
