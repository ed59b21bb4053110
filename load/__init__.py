"""Load: Locust workloads against a saga system, in Locust's own processes.

Nothing here is imported by users yet: run load with ``saga-harness load run``,
or run the locustfile (``load/locustfile.py``) with Locust yourself. Never import
``locust`` into the harness's process: it monkey-patches the interpreter with gevent.
"""

__all__: list[str] = []
