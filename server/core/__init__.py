"""The domain, pure: rooms and who may do what, the room log's model, the clock.

Nothing here imports asyncio, sockets, a database or ``time``: decisions take
``now`` from an injected clock and return what should happen.
"""
