# apology-worker: one image for the celery worker (default command) and the HTTP gateway
# (`apology-worker serve`, see docker-compose.yml).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/apology-metrics \
    APOLOGY_CONFIG_DIR=/app/config
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
COPY worker ./worker
COPY config ./config
RUN pip install -c requirements.lock . && useradd --system --uid 10001 apology
USER apology
# Celery turns SIGTERM into a warm shutdown (finish running tasks); with acks_late anything still
# unacknowledged goes back to the queue for another worker.
STOPSIGNAL SIGTERM
CMD ["celery", "-A", "worker.app", "worker", "--loglevel", "INFO", "--hostname", "worker@%h"]
