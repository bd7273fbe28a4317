"""One module per rule, each named after the rule it holds."""
