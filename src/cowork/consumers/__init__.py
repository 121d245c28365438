"""Durable consumers: checkpointed, leased, retried, with dead letters."""

from cowork.consumers.options import ConsumerOptions
from cowork.consumers.subscription import DurableSubscription

__all__ = ["ConsumerOptions", "DurableSubscription"]
