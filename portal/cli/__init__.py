from portal.cli import imports as _imports  # noqa: F401  (adds `flask advocates import`)
from portal.cli.advocates import advocates_cli, lists_cli
from portal.cli.demo import demo_cli
from portal.cli.invitations import invitations_cli
from portal.cli.maintenance import maintenance_cli
from portal.cli.opportunities import digest_cli, opportunities_cli
from portal.cli.outbox import outbox_cli
from portal.cli.recognition import badges_cli, points_cli
from portal.cli.references import references_cli
from portal.cli.reports import reports_cli
from portal.cli.users import users_cli

GROUPS = [
    users_cli,
    outbox_cli,
    demo_cli,
    advocates_cli,
    lists_cli,
    points_cli,
    badges_cli,
    digest_cli,
    opportunities_cli,
    invitations_cli,
    references_cli,
    maintenance_cli,
    reports_cli,
]
