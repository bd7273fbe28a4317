"""courtois: invitations that only go where someone agreed they should."""

__version__ = "0.1.0"
