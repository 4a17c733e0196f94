"""The benchmark of issue 3: ``bench/run`` (see bench/README.md)."""
