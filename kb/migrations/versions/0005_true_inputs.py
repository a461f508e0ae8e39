"""true inputs: device memory in MiB, checkpoint weight bytes, recurrent state, replica
size of measured rows, instances behind prices, user-added models, a catalog revision

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MIB_PER_GB = 1e9 / 2**20

MODEL_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "linear_num_key_heads": sa.Integer(),
    "linear_num_value_heads": sa.Integer(),
    "linear_key_head_dim": sa.Integer(),
    "linear_value_head_dim": sa.Integer(),
    "linear_conv_kernel_dim": sa.Integer(),
    "linear_state_bytes_per_element": sa.Float(),
    "non_expert_precision": sa.String(),
    "weights_bytes": sa.BigInteger(),
    "weights_source": sa.String(),
}


def upgrade() -> None:
    # Stored records keep working until `preflight kb load` writes the reported values: the
    # datasheet GB converts to MiB, and a price without its instance counts as a whole node.
    with op.batch_alter_table("hardware") as batch_op:
        batch_op.add_column(sa.Column("memory_mib", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("memory_source", sa.String(), nullable=True))
    op.execute(
        f"UPDATE hardware SET memory_mib = CAST(memory_gb * {MIB_PER_GB} AS INTEGER), "
        "memory_source = 'datasheet GB converted by migration 0005'"
    )
    with op.batch_alter_table("hardware") as batch_op:
        batch_op.alter_column("memory_mib", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("memory_source", existing_type=sa.String(), nullable=False)
        batch_op.drop_column("memory_gb")

    with op.batch_alter_table("model") as batch_op:
        for name, kind in MODEL_COLUMNS.items():
            batch_op.add_column(sa.Column(name, kind, nullable=True))
        batch_op.add_column(
            sa.Column("origin", sa.String(), nullable=False, server_default="catalog")
        )

    op.execute("UPDATE price SET instance_type = 'unstated' WHERE instance_type IS NULL")
    op.execute("UPDATE price SET gpus_per_instance = 8 WHERE gpus_per_instance IS NULL")
    with op.batch_alter_table("price") as batch_op:
        batch_op.alter_column("instance_type", existing_type=sa.String(), nullable=False)
        batch_op.alter_column("gpus_per_instance", existing_type=sa.Integer(), nullable=False)

    with op.batch_alter_table("benchmark") as batch_op:
        batch_op.add_column(sa.Column("dp", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("gpus", sa.Integer(), nullable=True))

    op.create_table(
        "catalog_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("catalog_revision")
    with op.batch_alter_table("benchmark") as batch_op:
        batch_op.drop_column("gpus")
        batch_op.drop_column("dp")

    with op.batch_alter_table("price") as batch_op:
        batch_op.alter_column("gpus_per_instance", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("instance_type", existing_type=sa.String(), nullable=True)

    with op.batch_alter_table("model") as batch_op:
        batch_op.drop_column("origin")
        for name in reversed(MODEL_COLUMNS):
            batch_op.drop_column(name)

    with op.batch_alter_table("hardware") as batch_op:
        batch_op.add_column(sa.Column("memory_gb", sa.Float(), nullable=True))
    op.execute(f"UPDATE hardware SET memory_gb = memory_mib / {MIB_PER_GB}")
    with op.batch_alter_table("hardware") as batch_op:
        batch_op.alter_column("memory_gb", existing_type=sa.Float(), nullable=False)
        batch_op.drop_column("memory_source")
        batch_op.drop_column("memory_mib")
