"""Who may act: staff accounts and sign-in, the gateway's signing keys, shops that vouch for
their viewers, and the one rule of which issuer may mint which role and room.

The signaling plane only verifies (``signaling.auth``: a token against the keys it is
given); everything here decides what those keys are and what their tokens may claim.
docs/accounts.md describes the whole.
"""
