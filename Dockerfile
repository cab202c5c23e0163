# Fumarole: the dashboards served on the sample archive.
#   docker build -t fumarole . && docker run -p 5006:5006 fumarole
# A real archive: mount it and its catalogue, and set FUMAROLE_CATALOG=/catalogs/my-archive.yaml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    FUMAROLE_ARCHIVE=/data/sample

WORKDIR /opt/fumarole
COPY pyproject.toml README.md ./
COPY app ./app
COPY dashboards ./dashboards
COPY catalogs ./catalogs
COPY assets ./assets
RUN pip install --no-cache-dir .

# The sample archive is generated in the image (a few minutes), never committed to git.
RUN fumarole sample --out /data/sample

EXPOSE 5006
CMD ["fumarole", "serve", "--port", "5006", "--address", "0.0.0.0"]
