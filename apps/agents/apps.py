from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "apps.agents"
    label = "agents"

    def ready(self) -> None:
        from aegis import events

        events.connect_receivers()  # agent.activity for every AgentActivity row (live streams)
