# syntax=docker/dockerfile:1
# One image for every Modelship component: `modelship operator` by default, and
# `modelship tracking-server`, `tracking-sidecar`, `serve`, `predict`, `evaluate` by the pod's args.
#
# The bases are build args: the defaults come from a container registry (docker build, kind);
# scripts/build-image.sh passes local ones made from Debian packages, for machines that reach
# no container registry (docs/install.md, "The image"). PYTHON_BASE must have python3 with
# its venv module; the builder and the runtime stage use the same one, so that the venv's
# interpreter path exists in both.
ARG PYTHON_BASE=python:3.11-slim
ARG NODE_BASE=node:20-slim

# --- ui: the web UI's bundle, built from ui/ with its lockfile (docs/ui.md) --------------
FROM ${NODE_BASE} AS ui
WORKDIR /src/ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY ui ./
RUN npm run build

# --- builder: build the wheel, install it with its dependencies into /opt/venv ---------
FROM ${PYTHON_BASE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The dependencies first, from the metadata alone (an empty package stands in for the code),
# so that a code change does not invalidate this layer. python3, not python: Debian has no
# `python` command.
COPY pyproject.toml README.md ./
RUN python3 -m venv /opt/venv \
 && mkdir -p operator/modelship && touch operator/modelship/__init__.py \
 && /opt/venv/bin/pip install '.[train]' \
 && /opt/venv/bin/pip uninstall -y modelship \
 && rm -rf operator build
COPY operator ./operator
# The bundle is package data of modelship.tracking.server (served at / by the tracking server).
COPY --from=ui /src/operator/modelship/tracking/server/ui_static ./operator/modelship/tracking/server/ui_static
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-deps /wheels/*.whl

# --- runtime: the venv and a non-root user, nothing else ---------------------------------
FROM ${PYTHON_BASE}
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
# The example MLprojects, which an Experiment runs from the image (spec.project.path), e.g.
# the quickstart's /opt/modelship/examples/iris; the train extra gave the venv their mlflow.
COPY manifests/examples /opt/modelship/examples
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
