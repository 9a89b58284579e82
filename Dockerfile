# syntax=docker/dockerfile:1
# One image for both roles; the command picks one: `--role api` (webhooks, REST API,
# dashboard, /metrics on 8080), `--role worker` (deploy, rollback and CI-cleanup jobs;
# /metrics and /healthz on 9464) or, by default, both in one process.
#
# Node 24 runs the TypeScript sources directly (type stripping), so nothing is compiled: the
# deps stage installs the production dependencies from the lockfile, the runtime stage puts
# the sources on top. Dependency manifests are copied before the sources, so a change to the
# code reuses the `npm ci` layer.
#
#   docker build -t rollhook .
#   docker run -v ./rollhook.yaml:/etc/rollhook/config.yaml:ro rollhook --role api

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency needs an install script (native extras are optional); skipping them keeps the
# layer reproducible and runs no third-party code at build time.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    ROLLHOOK_CONFIG=/etc/rollhook/config.yaml \
    ROLLHOOK_HEALTH_URLS="http://127.0.0.1:8080/healthz http://127.0.0.1:9464/healthz"
WORKDIR /app
# Owned by root and not writable by the process: the code cannot be changed at run time, and
# the container runs with a read-only root filesystem.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY workers ./workers
# The CLI over the REST API, for `docker exec <api> node bin/rollhook.ts status`.
COPY bin ./bin
# The `node` user of the base image, by number so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080 9464
# Healthy when the API (8080) or the worker's listener (9464) answers /healthz, so one check
# fits every role; change ROLLHOOK_HEALTH_URLS with server.port or metrics.port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const urls = (process.env.ROLLHOOK_HEALTH_URLS || '').split(' ').filter(Boolean); Promise.any(urls.map((u) => fetch(u, { signal: AbortSignal.timeout(3000) }).then((r) => { if (!r.ok) throw new Error(String(r.status)); }))).then(() => process.exit(0), () => process.exit(1));"]
# SIGTERM reaches node directly (no shell in between): it stops taking work, lets running jobs
# finish up to server.shutdownTimeout, then exits.
ENTRYPOINT ["node", "src/main.ts"]
CMD ["--role", "all"]
