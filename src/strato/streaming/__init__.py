"""Events in from Kafka: decoding, windowed-aggregation tiles and the consumer that writes both stores.

Sits above the three seams (online, offline, registry) and below `strato.store`, which drives it.
"""
