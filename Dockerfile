# The step image: every component of the metro-e2e Iris pipeline runs
# `python -m metro_e2e.steps.<step>` in this image, and in a cluster it runs `metro-e2e check`.
#   metro-e2e pipeline image --registry REGISTRY --push     (or: docker build -t metro-e2e-step:0.1.0 .)
FROM python:3.11-slim

ARG METRO_E2E_VERSION=0.1.0
LABEL org.opencontainers.image.title="metro-e2e-step" \
      org.opencontainers.image.version="${METRO_E2E_VERSION}" \
      org.opencontainers.image.description="metro-e2e: the Metro Iris pipeline's steps and the conformance suite"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/metro-e2e
COPY pyproject.toml README.md ./
COPY metro_e2e ./metro_e2e
# The package's own pinned ranges (MLflow client 2.x for the platform's 2.20.3 server).
# The image records its Python and package versions (metro-e2e pipeline check --image reads them back) and
# the build fails if they are outside the ranges this metro-e2e declares.
RUN pip install . && python -c "import metro_e2e.steps.train, mlflow; print('mlflow', mlflow.__version__)" \
    && python -m metro_e2e.pipeline.image record --output /etc/metro-e2e/image.json \
    && python -m metro_e2e.pipeline.image check /etc/metro-e2e/image.json

RUN useradd --create-home --uid 10001 metro
USER 10001
WORKDIR /home/metro
ENTRYPOINT []
CMD ["python", "-m", "metro_e2e.steps.train", "--help"]
