"""The HTTP edge: the aiohttp server, one auth layer, limits, PII masking, the hall screen,
the staff API."""
