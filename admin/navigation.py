"""The admin area's navigation: a few sections in the top bar (one row at 1280 px), each with the pages
it holds in a second bar under it. A link's words are the title of the page it opens, so what you
click is what you land on; the section and the page you are on are marked (aria-current)."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import has_request_context, request


@dataclass(frozen=True)
class Section:
    label: str
    endpoint: str
    pages: tuple[tuple[str, str], ...] = ()  # (endpoint, label): the second bar; empty: no second bar
    also: tuple[str, ...] = field(default=())  # other pages of the section (details, forms) that mark it

    def holds(self, endpoint: str | None) -> bool:
        return endpoint == self.endpoint or endpoint in self.also or any(e == endpoint for e, _ in self.pages)


SECTIONS: tuple[Section, ...] = (
    Section("Overview", "admin.index"),
    Section("Approvals", "admin.pending", (("admin.pending", "Approvals"), ("admin.nominations", "Nominations"))),
    Section(
        "Advocates",
        "admin.advocates",
        (
            ("admin.advocates", "Advocates"),
            ("admin.imports_list", "Import advocates"),
            ("admin.points_adjust", "Adjust points"),
            ("search.advocates", "Find advocates"),
        ),
        (
            "admin.advocate_profile",
            "admin.advocate_edit",
            "admin.import_mapping",
            "admin.import_job",
            "search.advocate_profile",
        ),
    ),
    Section(
        "Opportunities",
        "admin.opportunities_list",
        (("admin.opportunities_list", "Opportunities"), ("admin.boards", "Advisory boards")),
        ("admin.opportunity_detail", "admin.opportunity_new", "admin.opportunity_edit"),
    ),
    Section(
        "Rewards",
        "admin.rewards_list",
        (
            ("admin.rewards_list", "Rewards"),
            ("admin.redemptions_queue", "Reward orders"),
            ("admin.badges_admin", "Badges"),
        ),
        ("admin.reward_new", "admin.reward_edit"),
    ),
    Section(
        "Reports",
        "admin.reports",
        (
            ("admin.reports", "Reports"),
            ("admin.coverage_page", "Portfolio coverage"),
            ("admin.report_values", "Activity values"),
        ),
        ("admin.coverage_edit",),
    ),
    Section("Audit log", "admin.audit_log"),
    Section(
        "Settings",
        "admin.settings",
        (
            ("admin.settings", "Settings"),
            ("admin.lists_index", "Lists"),
            ("admin.activity_types", "Activity types"),
            ("search.health", "Search index"),
            ("admin.health", "Health"),
        ),
        ("admin.list_items", "admin.list_tags", "admin.activity_type_edit"),
    ),
)


def current_section(endpoint: str | None) -> Section | None:
    return next((s for s in SECTIONS if s.holds(endpoint)), None)


def inject() -> dict:
    """The admin layout's navigation (a context processor of the admin blueprint and of the admin pages
    served by other blueprints: the search index)."""
    if not has_request_context():  # an email rendered by a command
        return {}
    return {"admin_sections": SECTIONS, "admin_section": current_section(request.endpoint)}
