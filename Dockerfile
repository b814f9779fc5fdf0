# One image for web, workers and the one-shot jobs (migrate, topics, connector registration).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/hashinsight
COPY pyproject.toml ./
COPY app ./app
COPY workers ./workers
COPY generated ./generated
COPY tools ./tools
COPY contracts ./contracts
COPY connectors ./connectors
COPY migrations ./migrations
RUN pip install --no-cache-dir .
RUN useradd --system --uid 10001 hashinsight
USER hashinsight
EXPOSE 8000
CMD ["python", "-m", "app.entrypoints.serve", "--host", "0.0.0.0", "--port", "8000"]
