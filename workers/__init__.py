"""Kafka consumers: one shared loop (consumer_loop), one handler per worker."""
