"""Parley's wire format, protocol v1: messages, validation, codecs, error codes.

Pure: no asyncio, no sockets, no clock. The hub and the Python client both use it.
"""
