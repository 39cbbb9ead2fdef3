"""Parley's benchmark suite: Parley side by side with a raw websockets floor and Socket.IO 4.

Run it with ``python -m bench.run`` (see bench/README.md); it is not part of the test run.
"""
