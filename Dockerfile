# Production image: the web server (daphne, via weer-serve), Celery worker and beat all run from it (see k8s/).

# The pages' JavaScript and CSS, built from the npm lockfile (nothing is fetched at run time).
FROM node:20-slim AS pages
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend frontend
RUN npm run build

FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb-dev pkg-config gcc \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY project project
COPY domain domain
COPY realtime realtime
COPY ingestion ingestion
COPY frontend frontend
COPY --from=pages /build/frontend/static/frontend/dist frontend/static/frontend/dist
COPY manage.py Procfile ./
# The load tester (loadtest/ and its "loadtest" extra) is an operator's tool, not shipped: its
# package is not copied, the project is installed without extras, and the weer-loadtest script
# that every install of the project gets is removed, since what it points at is not here.
RUN pip install --no-cache-dir -c constraints.txt . \
 && rm -f /usr/local/bin/weer-loadtest \
 && useradd --uid 10001 --no-create-home weer
# Hashed, compressed static files for WhiteNoise (placeholder secrets: nothing is signed here).
RUN SECRET_KEY=build JWT_SIGNING_KEY=build python manage.py collectstatic --noinput
USER 10001
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
# weer-serve runs WEB_PROCESSES daphne processes (default 1: scale with replicas instead).
CMD ["weer-serve", "-b", "0.0.0.0", "-p", "8000", "--", "--proxy-headers"]
