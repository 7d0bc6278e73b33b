"""Notefall cloud: FastAPI API, Celery workers, billing (built in later issues)."""
