"""Test helpers for autofuse (the transformer corpus lives in :mod:`autofuse.testing.corpus`)."""
