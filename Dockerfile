# One image for every Reelgraph process; compose.yaml picks the command per service.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY reelgraph ./reelgraph
COPY subgraphs ./subgraphs
COPY supergraph ./supergraph
COPY media_worker ./media_worker
COPY schema ./schema
RUN uv sync --frozen --no-dev
ENV PATH=/app/.venv/bin:$PATH REELGRAPH_HOST=0.0.0.0 REELGRAPH_DATA_DIR=/data
RUN useradd --create-home --uid 10001 reelgraph && mkdir -p /data && chown reelgraph /data
USER reelgraph
CMD ["reelgraph", "up"]
