"""Conformance: our readers read fixtures built from the real products, never from our own sample writers."""
