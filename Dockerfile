# agent-sre images, from one Dockerfile:
#
# * runtime (the default target): the agent (`serve`), the reasoning service (`serve-reasoning`) and
#   the remediation functions (`serve-function`); the Knative Services pick the command. The TRM runs
#   from its ONNX graph with ONNX Runtime: no PyTorch in this image.
#     docker build -t ghcr.io/agent-sre/agent-sre:0.1.0 .
# * train: the runtime plus the `train` extra (PyTorch), to train, evaluate and re-export the TRM,
#   and to serve with TRM_BACKEND=torch, e.g. trm-reasoning on a GPU (DEVICE=cuda):
#     docker build --target train -t ghcr.io/agent-sre/agent-sre-train:0.1.0 .
#     docker build --target train --build-arg TORCH_VARIANT=cu128 -t ghcr.io/agent-sre/agent-sre-cuda:0.1.0 .
#
# torch is installed from PyTorch's own index (https://download.pytorch.org/whl/<variant>) before the
# extra: the CPU wheel is a fraction of the size of PyPI's default CUDA build. The version must match
# the pin in pyproject.toml.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md* ./
COPY src ./src
# The runtime install must not bring torch, directly or through a dependency.
RUN pip install . \
 && python -c "import importlib.util, sys; import agent_sre.cli, agent_sre.server, agent_sre.reasoning.service; sys.exit('torch is installed' if importlib.util.find_spec('torch') else 0)"

FROM build AS build-train
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
RUN pip install --index-url https://download.pytorch.org/whl/${TORCH_VARIANT} "torch==${TORCH_VERSION}" \
 && pip install ".[train]" \
 && python -c "import torch, agent_sre.trm.recipe; print('torch', torch.__version__)"

FROM ${PYTHON_IMAGE} AS base
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
# MODEL_PATH in the manifests points under /opt/agent-sre/models: bake trained models in with a
# derived image (`FROM ghcr.io/agent-sre/agent-sre:0.1.0` + `COPY trm /opt/agent-sre/models/trm`). The
# runtime image needs the export's model.onnx (written by `agent-sre train --export`).

FROM base AS train
COPY --from=build-train /opt/venv /opt/venv
USER 10001:10001
ENTRYPOINT ["agent-sre"]
CMD ["train", "--help"]

FROM base AS runtime
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["agent-sre"]
CMD ["serve"]
