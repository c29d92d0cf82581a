"""activity values (history per type), segment targets, indexes on participation request and completion times

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 12:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

import portal.models.base

# revision identifiers, used by Alembic.
revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "activity_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("activity_type_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("set_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", portal.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("value >= 0", name=op.f("ck_activity_values_value_nonneg")),
        sa.ForeignKeyConstraint(
            ["activity_type_id"],
            ["activity_types.id"],
            name=op.f("fk_activity_values_activity_type_id_activity_types"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["set_by_id"], ["users.id"], name=op.f("fk_activity_values_set_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_values")),
    )
    op.create_index(
        "ix_activity_values_type_from", "activity_values", ["activity_type_id", "effective_from"], unique=False
    )
    op.create_table(
        "segment_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("industry_id", sa.Integer(), nullable=True),
        sa.Column("region_id", sa.Integer(), nullable=True),
        sa.Column("country_code", sa.String(length=2), nullable=True),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("size_band_id", sa.Integer(), nullable=True),
        sa.Column("activity_type_id", sa.Integer(), nullable=True),
        sa.Column("wanted", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", portal.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", portal.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("wanted >= 1", name=op.f("ck_segment_targets_wanted_positive")),
        sa.ForeignKeyConstraint(
            ["activity_type_id"],
            ["activity_types.id"],
            name=op.f("fk_segment_targets_activity_type_id_activity_types"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["country_code"],
            ["countries.code"],
            name=op.f("fk_segment_targets_country_code_countries"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_segment_targets_created_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["industry_id"],
            ["industries.id"],
            name=op.f("fk_segment_targets_industry_id_industries"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_segment_targets_product_id_products"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["region_id"], ["regions.id"], name=op.f("fk_segment_targets_region_id_regions"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["size_band_id"],
            ["size_bands.id"],
            name=op.f("fk_segment_targets_size_band_id_size_bands"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_targets")),
    )
    op.create_index(op.f("ix_segment_targets_active"), "segment_targets", ["active"], unique=False)
    # The program report reads requests made and activities completed in a period.
    op.create_index("ix_participations_completed_at", "participations", ["completed_at"], unique=False)
    op.create_index("ix_participations_requested_at", "participations", ["requested_at"], unique=False)


def downgrade():
    op.drop_index("ix_participations_requested_at", table_name="participations")
    op.drop_index("ix_participations_completed_at", table_name="participations")
    op.drop_index(op.f("ix_segment_targets_active"), table_name="segment_targets")
    op.drop_table("segment_targets")
    op.drop_index("ix_activity_values_type_from", table_name="activity_values")
    op.drop_table("activity_values")
