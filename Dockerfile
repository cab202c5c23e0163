# Fumarole: the dashboards served on the sample archive (docs/deploy.md says more).
#   docker build -t fumarole . && docker run --rm -p 5006:5006 -v fumarole-state:/state fumarole
# A real archive: mount it read-only and its catalogue, and give --catalog (or FUMAROLE_CATALOG):
#   docker run -p 5006:5006 -v /archive:/archive:ro -v $PWD/my.yaml:/catalogs/my.yaml:ro fumarole \
#       fumarole serve --address 0.0.0.0 --catalog /catalogs/my.yaml
# A login and API tokens: mount the FOLDER holding the users and tokens files read-only (not the single files: the
# `fumarole users`/`tokens` commands replace a file by renaming, which a single-file mount would not show), e.g.
#   docker run -p 5006:5006 -v $PWD/auth:/etc/fumarole:ro fumarole \
#       fumarole serve --address 0.0.0.0 --users /etc/fumarole/users --tokens /etc/fumarole/tokens
# (docs/deploy.md, "Access control"; an OIDC client secret goes in -e FUMAROLE_OIDC_CLIENT_SECRET, never the command).
FROM python:3.11-slim

# FUMAROLE_ARCHIVE: where the default catalogue (catalogs/sample.yaml) reads the sample archive.
# FUMAROLE_STATE_DIR: the granule index, time-series results and keys (a volume: the archive stays read-only).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    FUMAROLE_ARCHIVE=/data/sample \
    FUMAROLE_STATE_DIR=/state

# A non-editable install: the dashboards, catalogues and assets are shipped inside the package (app/_resources).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY dashboards ./dashboards
COPY catalogs ./catalogs
COPY assets ./assets
RUN pip install --no-cache-dir /src && rm -rf /src/build /src/*.egg-info

# The sample archive is generated in the image (a few minutes), never committed to git, and read-only after.
RUN mkdir -p /data && fumarole sample --out /data/sample && chmod -R a-w /data/sample

# The server runs as a user of its own; only the state folder is writable.
RUN useradd --system --uid 10001 --create-home --home-dir /home/fumarole fumarole \
    && mkdir -p /state && chown fumarole:fumarole /state
USER fumarole
WORKDIR /home/fumarole
VOLUME ["/state"]

EXPOSE 5006
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:5006/liveness', timeout=4)"]
# Listening on every interface of the container is the container's choice; the published port decides who
# reaches it (without --users/--oidc-issuer/--tokens the server says so in a WARNING line at start). Websocket
# origins: localhost:5006 by default; set FUMAROLE_ALLOW_ORIGIN to the public host name.
CMD ["fumarole", "serve", "--port", "5006", "--address", "0.0.0.0"]
