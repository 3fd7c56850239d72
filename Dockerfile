# One image for web, worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 VAR_DIR=/app/var
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# collectstatic needs settings; these throwaway values exist only during the build.
RUN DEBUG=false SECRET_KEY=build-only-secret-key-not-used-at-runtime-0123456789abcdef \
    FERNET_KEYS=build-only-fernet-key-not-used-at-runtime-0123456789 ALLOWED_HOSTS=build ENV_FILE=none \
    python manage.py collectstatic --noinput \
 && useradd --create-home --uid 10001 app && mkdir -p /app/var && chown -R app /app/var

USER app
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60", "--access-logfile", "-"]
