"""Use cases: each validates everything first, then writes once, in one transaction."""
