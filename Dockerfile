# syntax=docker/dockerfile:1
#
# posepool for NVIDIA GPUs: the server (Node 20), a Python environment with CUDA PyTorch, ffmpeg,
# on a CUDA runtime base, running as a non-root user.
#
#   docker build -t posepool .
#   docker run --gpus all -p 3001:3001 -e POSE_WORKERS=2 posepool
#
# POSE_WORKERS: set it (2 per GPU). In the image there is no set-up record of the GPUs, so `auto`
# would count CPU cores. Weights that are downloaded (ViTPose, HMR2) go in POSE_MODELS_DIR (mount a
# volume at /models); MoveNet (the default) ships inside node_modules.
# Checked by server/test/deploy.test.ts (the shape, with dockerfile-ast); built by your registry's CI.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:12.4.1-runtime-ubuntu22.04

# ---- build: the TypeScript, then production node_modules only ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY protocol ./protocol
COPY server ./server
COPY workers ./workers
COPY scripts ./scripts
COPY pose-service ./pose-service
RUN node scripts/prepare.mjs --build-only && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: CUDA runtime base + Node + Python (CUDA PyTorch) + ffmpeg ----
FROM ${CUDA_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ffmpeg ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# The same Node as the build stage.
COPY --from=build /usr/local/bin/node /usr/local/bin/node

# PyPI's Linux torch wheels bundle their CUDA libraries; the base image brings the NVIDIA container
# settings (NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES) the GPU runtime needs.
COPY pose-service/requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/pose-venv \
 && /opt/pose-venv/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/pose-service ./pose-service
# The Python workers read the protocol from the repository layout (pose-service/../protocol).
COPY --from=build /app/protocol/protocol.json ./protocol/protocol.json
COPY --from=build /app/server/public ./server/public

RUN groupadd --system --gid 10001 posepool \
 && useradd --system --uid 10001 --gid posepool --home-dir /tmp --shell /usr/sbin/nologin posepool \
 && mkdir -p /models \
 && chown posepool:posepool /models
USER 10001:10001

ENV NODE_ENV=production \
    HOME=/tmp \
    PORT=3001 \
    HOST=0.0.0.0 \
    POSE_PYTHON=/opt/pose-venv/bin/python \
    POSE_DEVICE=auto \
    POSE_MODELS_DIR=/models
EXPOSE 3001

# Liveness (the event loop answers); readiness is GET /health (workers ready), for load balancers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3001)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# SIGTERM: stop accepting, finish in-flight requests and jobs within SHUTDOWN_GRACE_MS, then exit.
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=8", "dist/server/main.js"]
