"""The `hallwatch` command line: one module per command group, and the demo."""
