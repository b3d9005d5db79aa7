"""Events of a profile's purchases and access, the outbox, and webhook delivery."""
