from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.text import slugify
from django_tenants.utils import schema_exists, tenant_context

from aegis.admin import AuditedModelAdmin, admin_site, adopt
from apps.agents.models import Agent, AgentChannel, SkillInstallation
from apps.audit.services import record
from apps.tenants import services
from apps.tenants.models import Domain, Tenant


class DomainInline(admin.TabularInline):
    model = Domain
    fields = ("domain", "is_primary")
    extra = 0


class TenantActionForm(ActionForm):
    reason = forms.CharField(required=False, max_length=500, label="Reason (for suspend):")


class TenantAddForm(forms.ModelForm):
    """New tenants are created and provisioned by apps.tenants.services, like everywhere else."""

    slug = forms.SlugField(required=False, max_length=40, help_text="Leave blank to derive it from the company name.")

    class Meta:
        model = Tenant
        fields = ("company_name", "slug", "admin_email", "plan", "industry", "expected_agent_count")

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("slug") and cleaned.get("company_name"):
            cleaned["slug"] = slugify(cleaned["company_name"])[:40]
            if not cleaned["slug"]:
                self.add_error("slug", "No slug can be derived from this company name; enter one.")
        slug = cleaned.get("slug")
        # "a-b" and "a_b" are different slugs but the same schema name.
        if slug and Tenant.objects.filter(schema_name=services.schema_name_for(slug)).exists():
            self.add_error("slug", f"The schema name for “{slug}” is already taken; choose another slug.")
        return cleaned


def read_runtime_data(tenant: Tenant) -> dict:
    """The tenant's agents, channels and installed skills, read from its own schema."""
    with tenant_context(tenant):
        return {
            "agents": list(Agent.objects.select_related("role").order_by("name")),
            "channels": list(AgentChannel.objects.select_related("agent").order_by("agent__name", "name")),
            "installations": list(
                SkillInstallation.objects.select_related("skill", "agent").order_by("agent__name", "skill__name")
            ),
        }


@admin.register(Tenant, site=admin_site)
class TenantAdmin(AuditedModelAdmin):
    list_display = ("company_name", "slug", "status", "plan", "admin_email", "created_at")
    list_filter = ("status", "plan")
    search_fields = ("company_name", "slug", "admin_email")
    ordering = ("company_name",)
    inlines = [DomainInline]
    action_form = TenantActionForm
    actions = ["suspend_tenants", "reactivate_tenants"]
    fieldsets = [
        (None, {"fields": ("company_name", "admin_email", "plan", "industry", "expected_agent_count")}),
        ("Configuration", {"fields": ("model_defaults", "resource_limits")}),
        ("Lifecycle (changed by actions only)", {"fields": (
            "slug", "schema_name", "status", "status_reason", "provisioned_at", "suspended_at",
            "decommissioned_at", "purge_after", "purged_at", "created_at", "updated_at",
        )}),
    ]
    readonly_fields = (
        "slug", "schema_name", "status", "status_reason", "provisioned_at", "suspended_at",
        "decommissioned_at", "purge_after", "purged_at", "created_at", "updated_at",
    )

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": TenantAddForm.Meta.fields})]
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = TenantAddForm
        return super().get_form(request, obj, **kwargs)

    def get_inlines(self, request, obj):
        # The primary domain comes with the tenant; more can be added once it exists.
        return [] if obj is None else self.inlines

    def has_delete_permission(self, request, obj=None):
        return False  # tenants leave through the two-step decommission, never one click

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        tenant = services.create_tenant(
            company_name=obj.company_name, slug=obj.slug, admin_email=obj.admin_email, plan=obj.plan,
            industry=obj.industry, expected_agent_count=obj.expected_agent_count,
            actor=request.user, request=request,
        )
        adopt(obj, services.provision(tenant, actor=request.user, request=request))
        return None

    @admin.action(description="Suspend selected tenants (enter a reason)")
    def suspend_tenants(self, request, queryset):
        reason = request.POST.get("reason", "").strip()
        if not reason:
            self.message_user(request, "Enter the reason for the suspension in the “Reason” box next to the action.",
                              messages.ERROR)
            return
        self.apply_to_each(request, queryset, lambda tenant: services.suspend(
            tenant, reason=reason, actor=request.user, request=request), done="suspended")

    @admin.action(description="Reactivate selected tenants")
    def reactivate_tenants(self, request, queryset):
        self.apply_to_each(request, queryset, lambda tenant: services.reactivate(
            tenant, actor=request.user, request=request), done="reactivated")

    def get_urls(self):
        opts = self.opts
        return [
            path("<path:object_id>/runtime-data/", self.admin_site.admin_view(self.runtime_data_view),
                 name=f"{opts.app_label}_{opts.model_name}_runtime_data"),
            *super().get_urls(),
        ]

    def runtime_data_view(self, request, object_id):
        """Read-only view of a tenant's agents, channels and installed skills (its schema's data).

        Looking into a customer's data is itself audited (`tenant.data_viewed`).
        """
        tenant = self.get_object(request, unquote(object_id))
        if tenant is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, tenant):
            raise PermissionDenied
        data = None
        if tenant.purged_at is None and schema_exists(tenant.schema_name):
            data = read_runtime_data(tenant)
            record("tenant.data_viewed", actor=request.user, tenant=tenant, target=tenant, request=request,
                   changes={"agents": len(data["agents"]), "channels": len(data["channels"]),
                            "installations": len(data["installations"])})
        context = {
            **self.admin_site.each_context(request),
            "title": f"Runtime data of {tenant}",
            "subtitle": None,
            "opts": self.opts,
            "original": tenant,
            "data": data,
        }
        return TemplateResponse(request, "admin/tenants/tenant/runtime_data.html", context)
