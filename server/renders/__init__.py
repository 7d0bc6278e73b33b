"""The render farm: submit, run as leased steps on Celery workers, watch, cancel, download."""
