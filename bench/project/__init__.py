"""The Django project the benchmark serves with gunicorn (settings from the environment)."""
