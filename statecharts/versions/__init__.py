"""Older versions of this package's charts, kept installed for the entities
pinned to them and for replaying the events they applied (ENG-9)."""
