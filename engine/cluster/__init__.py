"""Beyond one machine: partitions of the entity space, their leases and fencing,
and the JetStream bus between receivers and workers (docs/scaling.md)."""
