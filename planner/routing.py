"""How requests reach replicas, and what that does to the prefix cache.

A spec's `prefix_cache_hit_rate` is the share of prompt tokens that repeat an earlier
request's prefix: a conversation's history, a document asked about again. One replica that saw
every request would find all of them cached. Spread over replicas, a request finds its prefix
only where the earlier request went: prefix-aware routing (llm-d's inference scheduler) sends
it there; routing blind to prefixes (round-robin, least-load, a Kubernetes Service) lands on
that replica one time in N. Shared system prompts, cached on every replica, make the blind
figure a floor, which is what sizing should rely on."""

from __future__ import annotations

from typing import Any

import numpy as np


def plausible_hit_rate(hit_rate: float, replicas: Any, prefix_routing: bool) -> Any:
    """The prefix-cache hit rate a deployment of `replicas` (a count, or an array of them)
    can count on."""
    return hit_rate if prefix_routing else hit_rate / np.maximum(replicas, 1)
