"""Adapters that start and describe a system under test.

``reference`` runs the bundled reference system (``sagashop``) through the
:class:`~saga_harness.supervisor.Supervisor`.
"""

from __future__ import annotations
