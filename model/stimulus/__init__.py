"""Inputs: the streaming workload, KV dumps, block traces and synthetic stimulus generators."""
