# vaeviz as a container: one app server. See docs/deploy.md for two replicas behind a load balancer.
FROM python:3.11-slim

# The interpolation strips are drawn with DejaVu Sans (PIL's own font otherwise).
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 vaeviz
WORKDIR /app

# Dependencies first (a layer that survives code changes). PyPI's torch is the CUDA build (it runs on
# the CPU too); a CPU-only server may pre-install torch and torchvision from PyTorch's CPU index.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY pyproject.toml README.md app.py ./
COPY .streamlit ./.streamlit
COPY vaeviz ./vaeviz
COPY pages ./pages
COPY checkpoints ./checkpoints
RUN pip install --no-cache-dir --no-deps -e . && mkdir -p /data/user && chown vaeviz:vaeviz /data/user

# Saved models go to a volume (share it between replicas); data sets are read from /data/datasets.
ENV VAEVIZ_USER_DIR=/data/user \
    VAEVIZ_DATA_DIR=/data/datasets \
    PYTHONUNBUFFERED=1
VOLUME ["/data/user"]
USER vaeviz
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).status != 200)"
CMD ["streamlit", "run", "app.py", "--server.address", "0.0.0.0", "--server.port", "8501", "--server.headless", "true"]
