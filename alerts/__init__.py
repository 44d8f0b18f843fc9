"""hallwatch alerts (issue 5)."""
