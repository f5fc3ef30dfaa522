# One image for the api, worker, sinks and simulator; the command picks the process.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY producers producers
COPY processors processors
COPY sinks sinks
COPY api api
COPY sluice sluice
RUN pip install --no-cache-dir .
ENV SLUICE_HOME=/data
ENTRYPOINT ["sluice"]
