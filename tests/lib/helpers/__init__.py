"""Shared helpers for end-to-end tests (real processes, a cuttable TCP proxy)."""
