"""measured loads: the open-loop arrivals, percentiles, run size and engine settings of
measured rows, and the split that keeps some of them from every fit

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 11:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BENCHMARK_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "e2e_p50_ms": sa.Float(),
    "itl_mean_ms": sa.Float(),
    "arrival": sa.String(),
    "burstiness": sa.Float(),
    "length_distribution": sa.String(),
    "num_prompts": sa.Integer(),
    "max_num_seqs": sa.Integer(),
    "max_num_batched_tokens": sa.Integer(),
    "gpu_memory_utilization": sa.Float(),
    "kv_cache_dtype": sa.String(),
    "prefix_caching": sa.Boolean(),
    "note": sa.String(),
}


def upgrade() -> None:
    with op.batch_alter_table("benchmark") as batch_op:
        for name, kind in BENCHMARK_COLUMNS.items():
            batch_op.add_column(sa.Column(name, kind, nullable=True))
        batch_op.add_column(sa.Column("split", sa.String(), nullable=False, server_default="fit"))


def downgrade() -> None:
    with op.batch_alter_table("benchmark") as batch_op:
        batch_op.drop_column("split")
        for name in reversed(BENCHMARK_COLUMNS):
            batch_op.drop_column(name)
