"""E-mail: the order confirmation (R11, R12), queued durably and sent in the background.

- ``outbox``: jobs are entries of the log room ``mail:outbox``, one per member
  and order, idempotent by key; one sender among the hubs (a store lease) reads
  them in order, sends each and moves its cursor (a ``read`` entry).
- ``compose``: a job becomes an ``EmailMessage`` (text, then an HTML
  alternative) from the Jinja2 templates in ``server/templates/mail/``.
- ``transports``: ``files`` writes ``.eml`` files; ``smtp`` sends with aiosmtplib.
"""
