# syntax=docker/dockerfile:1
# One image for every Modelship component: `modelship operator` by default, and
# `modelship tracking-server`, `tracking-sidecar`, `serve`, `predict`, `evaluate` by the pod's args.

# --- ui: the web UI's bundle, built from ui/ with its lockfile (docs/ui.md) --------------
FROM node:20-slim AS ui
WORKDIR /src/ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY ui ./
RUN npm run build

# --- builder: build the wheel, install it with its dependencies into /opt/venv ---------
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Metadata first, so that a code change does not invalidate the dependency layer.
COPY pyproject.toml README.md ./
COPY operator ./operator
# The bundle is package data of modelship.tracking.server (served at / by the tracking server).
COPY --from=ui /src/operator/modelship/tracking/server/ui_static ./operator/modelship/tracking/server/ui_static
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install /wheels/*.whl

# --- runtime: the venv and a non-root user, nothing else ---------------------------------
FROM python:3.11-slim
LABEL org.opencontainers.image.title="modelship" \
      org.opencontainers.image.description="The ML lifecycle (MLflow's Tracking, Projects, Models, Registry) as a Kubernetes operator" \
      org.opencontainers.image.source="https://github.com/modelship/modelship" \
      org.opencontainers.image.licenses="Apache-2.0"
# git: Experiments check their MLproject out of git in an init container of this image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 modelship \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin modelship
COPY --from=builder /opt/venv /opt/venv
# pip compiled the bytecode at install time: the root filesystem can be read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
WORKDIR /tmp
# 8080: liveness (/healthz); 9090: Prometheus (/metrics).
EXPOSE 8080 9090
ENTRYPOINT ["modelship"]
CMD ["operator"]
