# The step image: every component of the metro-e2e Iris pipeline runs
# `python -m metro_e2e.steps.<step>` in this image.
#   docker build -t metro-e2e-step:0.1.0 .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/metro-e2e
COPY pyproject.toml README.md ./
COPY metro_e2e ./metro_e2e
# The package's own pinned ranges (MLflow client 2.x for the platform's 2.20.3 server).
RUN pip install . && python -c "import metro_e2e.steps.train, mlflow; print('mlflow', mlflow.__version__)"

RUN useradd --create-home --uid 10001 metro
USER 10001
WORKDIR /home/metro
ENTRYPOINT []
CMD ["python", "-m", "metro_e2e.steps.train", "--help"]
