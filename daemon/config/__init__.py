"""One validated settings object, from TOML, the environment and flags."""
