"""Bucket event notifications on the wire: the raft leader delivers what apply queued.

- `targets`: a webhook (signed), Redis (RESP) and NATS (text protocol), each delivering a list
  of messages in order.
- `delivery`: the leader's loop over every target, with backoff and acknowledgement through the log.

The queue itself, and how a change becomes events, is the model's: see nebulaio.meta.notify.
"""
