"""report_figures: the dashboard's figures per period, kept as JSON by `flask reports refresh` and an
admin's "Refresh now", so long periods answer without grouping their participations on every view

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 19:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import portal.models.base

# revision identifiers, used by Alembic.
revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "report_figures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("computed_at", portal.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_figures")),
        sa.UniqueConstraint("kind", "period_start", "period_end", name="uq_report_figures_period"),
    )


def downgrade():
    op.drop_table("report_figures")
