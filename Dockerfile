FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY worker ./worker
COPY config ./config
RUN pip install --no-cache-dir -c requirements.lock .
USER nobody
