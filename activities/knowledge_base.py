"""Activities over the knowledge base."""

from __future__ import annotations

from temporalio import activity

from kb.db import session_scope
from kb.repository import KnowledgeBaseStats, stats


class KnowledgeBaseActivities:
    """Activities that read or write the knowledge base at `database_url`."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url

    @activity.defn(name="kb_stats")
    def kb_stats(self) -> KnowledgeBaseStats:
        with session_scope(self._database_url) as session:
            return stats(session=session)
