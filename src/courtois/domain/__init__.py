"""The pure domain: plain data and rules of state, importing only the standard library."""
