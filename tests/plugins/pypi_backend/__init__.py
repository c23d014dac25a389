"""The fixture-backend PEP 517 backend used by the loopback test index."""
