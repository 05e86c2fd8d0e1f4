# agent-sre image: the agent (`serve`), the reasoning service (`serve-reasoning`) and the
# remediation functions (`serve-function`) share it; the Knative Services pick the command.
#
#   docker build -t ghcr.io/agent-sre/agent-sre:0.1.0 .
#   docker build --build-arg TORCH_VARIANT=cu128 -t ghcr.io/agent-sre/agent-sre-cuda:0.1.0 .
#
# torch is installed first from PyTorch's own index (https://download.pytorch.org/whl/<variant>):
# the CPU wheel is a fraction of the size of PyPI's default CUDA build. The version must match
# the pin in pyproject.toml.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --index-url https://download.pytorch.org/whl/${TORCH_VARIANT} "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md* ./
COPY src ./src
RUN pip install . \
 && python -c "import torch, agent_sre; print('torch', torch.__version__)"

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.source="https://github.com/agent-sre/agent-sre" \
      org.opencontainers.image.description="agent-sre: auto-remediation for Kubernetes alerts" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    PORT=8080
RUN groupadd --system --gid 10001 agent-sre \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin agent-sre \
 && mkdir -p /opt/agent-sre/models \
 && chown -R 10001:10001 /opt/agent-sre/models
COPY --from=build /opt/venv /opt/venv
# MODEL_PATH in the manifests points under /opt/agent-sre/models: bake trained checkpoints in with
# a derived image (`FROM ghcr.io/agent-sre/agent-sre:0.1.0` + `COPY trm /opt/agent-sre/models/trm`).
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["agent-sre"]
CMD ["serve"]
