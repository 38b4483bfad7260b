"""Transports, one module per wire format, and the explicit registry."""
