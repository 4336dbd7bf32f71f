# automodel on Ray's official image line, pinned to the Ray version the package is tested with.
#
#   docker build -t automodel:0.1.0 .                                   # CPU image
#   docker build --build-arg RAY_IMAGE=rayproject/ray:2.60.0-py311-gpu \
#                --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t automodel:0.1.0-gpu .
#
# Serve an artifact (Ray Serve, port 8000; the healthcheck asks Serve's proxy):
#   docker run -p 8000:8000 -v $PWD/automodel_runs/quickstart/artifact:/models/artifact:ro \
#       automodel:0.1.0 automodel serve /models/artifact --port 8000
# Run a job or the whole chain in the container:
#   docker run automodel:0.1.0 automodel run configs/digits.yaml --out /tmp/run
# As the image of a cluster.yaml cluster (docker.image), the launcher runs its own commands.
#
# No secrets go into the image: a Ray started in the container creates its own auth token at
# run time; for a cluster, the token is mounted by the launcher (cluster.yaml file_mounts).
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311-cpu
FROM ${RAY_IMAGE}

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

# The Ray images run as the unprivileged user `ray` (uid 1000); say so explicitly and install
# into its Python, never as root.
USER ray
WORKDIR /home/ray/automodel

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAY_USAGE_STATS_ENABLED=0

# torch first, pinned, from the index that matches the image (CPU wheels by default; an unpinned
# torch from PyPI pulls a multi-GB CUDA build).
RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"

COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users automodel ./automodel
COPY --chown=ray:users serve_apps ./serve_apps
COPY --chown=ray:users jobs ./jobs
COPY --chown=ray:users configs ./configs
RUN pip install "ray[default,serve,train,tune]==2.60.0" . \
    && python -c "import automodel, ray; assert ray.__version__ == '2.60.0', ray.__version__"

EXPOSE 8000 8265
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/-/healthz', timeout=4)"

CMD ["automodel", "--help"]
