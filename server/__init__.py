"""Parley's hub: the domain core, storage and fan-out, and the I/O around them."""
