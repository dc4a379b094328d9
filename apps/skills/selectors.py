"""Reads of the marketplace and the role catalog."""

from __future__ import annotations

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import BooleanField, Count, Exists, F, Func, OuterRef, Q, QuerySet

from aegis.ordering import order
from apps.skills.models import AgentRole, Skill

# skills_status_created_idx (status, -created_at): the queue is read in either direction.
REVIEW_ORDERINGS = {"createdAt": "created_at"}
DEFAULT_REVIEW_ORDERING = "createdAt"  # first come, first reviewed


def review_queue(*, category: str | None = None, ordering: str | None = None) -> QuerySet[Skill]:
    """Pending skill versions with their author: one query per page."""

    queryset = Skill.objects.filter(status=Skill.Status.PENDING).select_related("author", "reviewed_by")
    if category:
        queryset = queryset.filter(category=category)  # skills_status_category_idx (status, category, name)
    return order(queryset.defer("search_vector"), ordering or DEFAULT_REVIEW_ORDERING, REVIEW_ORDERINGS)


def roles() -> QuerySet[AgentRole]:
    """The role catalog by key (its unique index)."""
    return AgentRole.objects.order_by("key")


# --- Marketplace (the tenant side: browse, one's own submissions) ------------------------------------
#
# The list shows one entry per slug: its newest approved version (semver precedence, the order
# apps.agents.resolver uses to pick the version a role follows). Older approved versions stay
# readable by id and are listed in the detail's `versions`.

# Wire name -> field. `name` with a category: skills_status_category_idx (status, category, name);
# `createdAt`: skills_status_created_idx (status, -created_at).
MARKETPLACE_ORDERINGS = {"name": "name", "createdAt": "created_at", "reviewedAt": "reviewed_at"}
DEFAULT_MARKETPLACE_ORDERING = "name"
MY_SUBMISSION_ORDERINGS = {"createdAt": "created_at", "name": "name", "status": "status"}
DEFAULT_MY_SUBMISSION_ORDERING = "-createdAt"  # newest submission first

# Semver precedence in SQL, mirroring semver_key: [major, minor, patch] as numeric[] (the grammar
# allows numbers beyond bigint), then release after its pre-releases, then the pre-release text.
# split_part/strpos rather than regular expressions: this runs once per pair of versions of a slug.
def _semver_sql(version: str) -> str:
    tagged = f"split_part({version}, '+', 1)"  # build metadata does not count
    dash = f"strpos({tagged}, '-')"
    prerelease = f"CASE WHEN {dash} > 0 THEN substr({tagged}, {dash} + 1) ELSE '' END"
    return f"string_to_array(split_part({tagged}, '-', 1), '.')::numeric[], {dash} = 0, {prerelease} COLLATE \"C\""


def semver_key(version: str) -> tuple:
    """Precedence of a semver string; build metadata is ignored, pre-release tags compare as text."""
    core, _, prerelease = version.partition("+")[0].partition("-")
    major, minor, patch = (int(part) for part in core.split("."))
    return (major, minor, patch, prerelease == "", prerelease)


class _Newer(Func):
    """(version, created_at, id) of one row sorts after another's: a total order over a slug's
    versions (equal precedence, e.g. builds differing only in metadata, falls to the later submission)."""

    arity = 6
    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra_context):
        sql = []
        for expression in self.get_source_expressions():
            column, params = compiler.compile(expression)
            if params:  # the template below repeats the version: only plain columns are safe in it
                raise ValueError("_Newer compares columns only")
            sql.append(column)
        left_version, left_created, left_id, right_version, right_created, right_id = sql
        left = f"({_semver_sql(left_version)}, {left_created}, {left_id})"
        return f"{left} > ({_semver_sql(right_version)}, {right_created}, {right_id})", []


def newest_per_slug(queryset: QuerySet[Skill]) -> QuerySet[Skill]:
    """Keep the rows no approved version of the same slug outranks. An anti-join probing the
    (slug, version) unique index, so a filtered or first page does not read the whole table."""
    newer = (Skill.objects.filter(slug=OuterRef("slug"), status=Skill.Status.APPROVED)
             .exclude(pk=OuterRef("pk"))  # cheap, checked first: single-version slugs never parse a version
             .filter(_Newer("version", "created_at", "id", OuterRef("version"), OuterRef("created_at"),
                            OuterRef("id"))))
    return queryset.filter(~Exists(newer))


def marketplace(*, search: str = "", category: str | None = None, ordering: str | None = None) -> QuerySet[Skill]:
    """Approved skills, newest version per slug. With `search`: full-text match (websearch syntax)
    over name (weight A) and description (B) via skills_search_idx, best match first unless an
    ordering is asked for."""
    queryset = newest_per_slug(Skill.objects.filter(status=Skill.Status.APPROVED)).defer(
        "search_vector", "configuration", "review_note")
    if category:
        queryset = queryset.filter(category=category)
    if search:
        query = SearchQuery(search, search_type="websearch", config="english")
        queryset = queryset.filter(search_vector=query)
        if not ordering:
            return queryset.annotate(rank=SearchRank(F("search_vector"), query)).order_by("-rank", "name", "pk")
    return order(queryset, ordering or DEFAULT_MARKETPLACE_ORDERING, MARKETPLACE_ORDERINGS)


def category_counts() -> list[dict]:
    """Every category (enum order) with the number of entries the marketplace list shows in it."""
    counts = dict(marketplace().order_by().values_list("category").annotate(count=Count("id")))
    return [{"category": value, "label": label, "count": counts.get(value, 0)}
            for value, label in Skill.Category.choices]


def visible_skills(*, owner_id) -> QuerySet[Skill]:
    """What a caller may read by id: any approved version, and their own submissions in any status.
    `owner_id` None (an API key whose creator is gone) owns nothing: never match author IS NULL."""
    visible = Q(status=Skill.Status.APPROVED)
    if owner_id is not None:
        visible |= Q(author_id=owner_id)
    return Skill.objects.filter(visible).defer("search_vector")


def approved_versions(slug: str) -> list[Skill]:
    """The approved versions of a slug, newest first (few rows: the unique (slug, version) index)."""
    versions = Skill.objects.filter(slug=slug, status=Skill.Status.APPROVED).only("id", "version", "reviewed_at",
                                                                                  "created_at")
    return sorted(versions, key=lambda skill: (semver_key(skill.version), skill.created_at, str(skill.pk)),
                  reverse=True)


def my_submissions(*, owner_id, status: str | None = None, ordering: str | None = None) -> QuerySet[Skill]:
    """The owner's submissions in every status (skills_skill_author_id index)."""
    if owner_id is None:
        return Skill.objects.none()
    queryset = Skill.objects.filter(author_id=owner_id).defer("search_vector", "configuration")
    if status:
        queryset = queryset.filter(status=status)
    return order(queryset, ordering or DEFAULT_MY_SUBMISSION_ORDERING, MY_SUBMISSION_ORDERINGS)
