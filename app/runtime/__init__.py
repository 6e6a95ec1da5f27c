"""Local runtime of AIMDS services: Kafka and Redis processes, Testcontainers, external."""
