"""Forwarding: the seam and its two forwarders."""
