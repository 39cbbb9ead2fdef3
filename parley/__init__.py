"""Parley: the real-time chat and notification hub for second-hand marketplaces.

Installed, Parley is this one package: ``parley.server`` (the hub), ``parley.protocol``
(the wire format, shared with clients) and ``parley.client`` (the Python client). In the
repository the three live in the top-level folders ``server/``, ``protocol/`` and
``client/``; ``parley/`` links to them so the same imports work from a checkout.
"""
