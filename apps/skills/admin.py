from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import ActionForm

from aegis.admin import AuditedModelAdmin, admin_site
from apps.skills import services
from apps.skills.models import AgentRole, Skill


class ReviewActionForm(ActionForm):
    note = forms.CharField(required=False, max_length=2000, label="Review note (required to reject):")


@admin.register(Skill, site=admin_site)
class SkillAdmin(AuditedModelAdmin):
    """The marketplace and its review queue (filter on status = pending)."""

    list_display = ("name", "version", "slug", "category", "status", "author", "reviewed_by", "reviewed_at",
                    "created_at")
    list_filter = ("status", "category")
    search_fields = ("name", "slug")
    list_select_related = ("author", "reviewed_by")
    action_form = ReviewActionForm
    actions = ["approve_skills", "reject_skills"]
    fieldsets = [
        (None, {"fields": ("name", "slug", "version", "category", "description")}),
        ("Definition", {"fields": ("capabilities", "configuration")}),
        ("Review (changed by actions only)", {"fields": ("status", "author", "review_note", "reviewed_by",
                                                         "reviewed_at", "created_at", "updated_at")}),
    ]
    review_fields = ("status", "author", "review_note", "reviewed_by", "reviewed_at", "created_at", "updated_at")
    content_fields = ("name", "slug", "version", "category", "description", "capabilities", "configuration")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.review_fields
        if obj.status != Skill.Status.PENDING:
            # A reviewed version is what tenants installed or were refused: it never changes.
            return self.content_fields + self.review_fields
        return ("slug", "version", *self.review_fields)  # (slug, version) names the version

    def has_delete_permission(self, request, obj=None):
        return False  # tenant installations refer to skills; reject instead

    def save_model(self, request, obj, form, change):
        if not change:
            obj.author = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Approve selected skills")
    def approve_skills(self, request, queryset):
        note = request.POST.get("note", "")
        self.apply_to_each(request, queryset, lambda skill: services.approve_skill(
            skill=skill, reviewer=request.user, note=note, request=request), done="approved")

    @admin.action(description="Reject selected skills (enter a review note)")
    def reject_skills(self, request, queryset):
        note = request.POST.get("note", "")
        self.apply_to_each(request, queryset, lambda skill: services.reject_skill(
            skill=skill, reviewer=request.user, note=note, request=request), done="rejected")


@admin.register(AgentRole, site=admin_site)
class AgentRoleAdmin(AuditedModelAdmin):
    list_display = ("key", "name", "default_skills", "updated_at")
    search_fields = ("key", "name")
    fields = ("key", "name", "description", "default_skills", "default_settings", "created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        # Agents in every tenant schema refer to a role by its key.
        return ("created_at", "updated_at") if obj is None else ("key", "created_at", "updated_at")

    def has_delete_permission(self, request, obj=None):
        return False  # agents in tenant schemas refer to roles, and Django cannot see across schemas
