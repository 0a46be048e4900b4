"""Machine-readable specs generated from the code: the OpenAPI document of the REST surface
(:mod:`gateway.specs.openapi`) and the JSON Schema of every WebSocket message and event
(:mod:`gateway.specs.protocol`).

Why generated: the Markdown tables in docs/ drifted from the handlers before; these documents
are built from the same typed classes the edge decodes with (messages) and the server
serializes (events), and from the routes the app really registers, so a drifted copy fails
``tests/unit/test_specs_drift.py``. ``python -m gateway.specs --out docs/spec/`` rewrites them.
"""

from __future__ import annotations

from .openapi import openapi_document
from .protocol import protocol_document

__all__ = ["openapi_document", "protocol_document"]
