"""What the gateway does around aiortc's own behaviour (being split into one module per patch)."""
