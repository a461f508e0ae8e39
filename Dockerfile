# The Preflight image: API, worker and CLI (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md settings.py worker.py ./
COPY planner planner
COPY workflows workflows
COPY activities activities
COPY kb kb
COPY templates templates
COPY api api
RUN pip install --no-cache-dir .
USER nobody
