"""The pages the daemon serves as files (the hall screen); data, no code."""
