"""The pure policy: rules that take facts and a clock and return verdicts."""
