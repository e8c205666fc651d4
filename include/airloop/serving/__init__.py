"""Real-time serving: the request contract, the live-traffic log and the BentoML service."""
