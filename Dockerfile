# The production image: the web server (weer-serve, daphne), the Celery worker and beat and the
# migration Job all run from it (k8s/). Three stages; only the last one ships:
#   pages   - the pages' JavaScript and CSS, from the npm lockfile
#   build   - wheels of every Python dependency, compiled where they need it (mysqlclient),
#             installed into a virtualenv
#   runtime - that virtualenv, the sources and the pages: no compiler, no headers, no wheels;
#             runs as UID 10001 and needs no writable path but /tmp
# Plain `docker build .` (no BuildKit-only syntax). tests/test_dockerfile.py checks it.
# The Debian release is pinned (bookworm): the runtime library's package name depends on it.

FROM node:20-bookworm-slim AS pages
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend frontend
RUN npm run build

FROM python:3.11-slim-bookworm AS build
# What mysqlclient compiles against; nothing of it reaches the runtime stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev libmariadb-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The dependencies first (their layer stays cached while only WeER's code changes): the
# [project] dependencies of pyproject.toml, at the versions constraints.txt pins.
COPY pyproject.toml constraints.txt README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip wheel --wheel-dir /wheels -c constraints.txt -r requirements.txt
# WeER itself, for its console scripts (weer-serve); the code it runs is /app's (runtime stage).
# The load tester (loadtest/, the "loadtest" extra) is an operator's tool: not copied, not built.
COPY project project
COPY domain domain
COPY realtime realtime
COPY ingestion ingestion
COPY frontend frontend
RUN pip wheel --wheel-dir /wheels --no-deps . \
 && python -m venv /opt/weer \
 && /opt/weer/bin/pip install --no-index --find-links /wheels weer \
 && rm -f /opt/weer/bin/weer-loadtest

FROM python:3.11-slim-bookworm AS runtime
# mysqlclient's one shared library (libmariadb.so.3); tests/test_dockerfile.py checks on the
# machine's own build that it needs no other package.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /tmp weer
COPY --from=build /opt/weer /opt/weer
# The sources come first on the path (PYTHONPATH), so settings.BASE_DIR is /app: its templates,
# locale, icons and collected static files. Owned by root: the app cannot change its own code.
WORKDIR /app
COPY manage.py Procfile ./
COPY project project
COPY domain domain
COPY realtime realtime
COPY ingestion ingestion
COPY frontend frontend
COPY --from=pages /build/frontend/static/frontend/dist frontend/static/frontend/dist
ENV PATH=/opt/weer/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
# Hashed, compressed static files for WhiteNoise (placeholder secrets: nothing is signed here),
# and the bytecode, compiled now because the root filesystem is read-only at run time.
RUN SECRET_KEY=build JWT_SIGNING_KEY=build python manage.py collectstatic --noinput \
 && python -m compileall -q /app
USER 10001:10001
EXPOSE 8000
# One daphne process (WEB_PROCESSES, default 1): scale with replicas instead.
CMD ["weer-serve", "-b", "0.0.0.0", "-p", "8000", "--", "--proxy-headers"]
