from django.db import models

from aegis.db import AppendOnlyModel


class AuditLog(AppendOnlyModel):
    """Who did what, to what, from where. Append-only: a database trigger (migration 0002)
    refuses UPDATE and DELETE, except the one UPDATE that ON DELETE SET NULL of an actor makes;
    `actor_label` keeps the actor's name for that case."""

    # null: a platform-level action. The two FKs below are indexed by the composite indexes that
    # lead with them (audit_tenant_created_idx, audit_actor_created_idx): a second single-column
    # index would only slow down inserts into the biggest table.
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    actor_user = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    actor_api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=254, blank=True, help_text="e-mail or key prefix, kept if the actor goes")
    action = models.CharField(max_length=100, help_text="dotted verb, e.g. agent.created")
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="audit_created_idx"),
            models.Index(fields=["tenant", "-created_at", "-id"], name="audit_tenant_created_idx"),
            models.Index(fields=["actor_user", "-created_at"], name="audit_actor_created_idx"),
            models.Index(fields=["action", "-created_at"], name="audit_action_created_idx"),
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            # The tenant feed's filters, so rare actions in a large tenant do not scan its history.
            models.Index(fields=["tenant", "action", "-created_at", "-id"], name="audit_tenant_action_idx"),
            models.Index(fields=["tenant", "target_type", "-created_at", "-id"], name="audit_tenant_target_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label or 'system'}"
