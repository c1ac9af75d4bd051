# The model server as the platform's serving pod runs it: download ml-models/latest/, then
# `mlflow models serve --env-manager local`. Exits 1 (crash-loops) while latest/ is empty.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/metro-e2e
COPY pyproject.toml README.md ./
COPY metro_e2e ./metro_e2e
RUN pip install .
RUN useradd --create-home --uid 10001 metro
USER 10001
WORKDIR /home/metro
EXPOSE 5001
CMD ["python", "-m", "metro_e2e.stack.serving_pod"]
