from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "apps.tenants"
    label = "tenants"

    def ready(self) -> None:
        from apps.agents.signals import runtime_config_changed
        from apps.tenants.runtime.receivers import schedule_config_apply

        # A change to agents, channels, skills, the toolbox or roles re-renders the runtime config.
        runtime_config_changed.connect(schedule_config_apply, dispatch_uid="tenants.runtime.apply_config")
