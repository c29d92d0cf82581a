"""indexes the program report reads from alone: completed activities and requests of a period, an advocate's
completed activities around a day, new advocates of a period

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 16:10:00.000000

Measured at 50,000 advocates / 500,000 participations on SQLite (python -m bench --reports): the report's
blocks read a period's participations from these indexes without touching the table. The status leads
where the report asks for one status (an equality and a range on one index: SQLite's planner picks it
without statistics).
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_participations_status_completed", "participations", ["status", "completed_at", "user_id", "opportunity_id"]
    )
    op.create_index("ix_participations_requested", "participations", ["requested_at", "status", "opportunity_id"])
    op.create_index("ix_participations_user_status_completed", "participations", ["user_id", "status", "completed_at"])
    op.drop_index("ix_participations_completed_at", table_name="participations")
    op.drop_index("ix_participations_requested_at", table_name="participations")
    op.drop_index("ix_participations_user_status", table_name="participations")
    op.create_index("ix_users_role_approved", "users", ["role", "approved_at", "status"])


def downgrade():
    op.drop_index("ix_users_role_approved", table_name="users")
    op.create_index("ix_participations_user_status", "participations", ["user_id", "status"])
    op.create_index("ix_participations_requested_at", "participations", ["requested_at"])
    op.create_index("ix_participations_completed_at", "participations", ["completed_at"])
    op.drop_index("ix_participations_user_status_completed", table_name="participations")
    op.drop_index("ix_participations_requested", table_name="participations")
    op.drop_index("ix_participations_status_completed", table_name="participations")
