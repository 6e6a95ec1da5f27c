# Worker image for docker-compose.yml: the AIMDS package on Python 3.11.
FROM python:3.11-slim
WORKDIR /srv/aimds
COPY pyproject.toml README.md ./
COPY app ./app
COPY agents ./agents
COPY topics ./topics
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["aimds"]
CMD ["worker"]
