"""The bundled JSON Schemas: the CloudEvents 1.0 envelope and the reference system's event data.

``index.json`` maps each CloudEvent ``type`` the reference system (sagashop)
emits to the file holding the schema of its ``data``;
``cloudevents-envelope.json`` is the envelope every event must match. See
:mod:`saga_harness.contracts.events`.
"""
