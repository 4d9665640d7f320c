"""Outbox claims (ENG-10): a command is claimed, with a lease, before it runs.

A dispatcher claims what it is about to run in one atomic step of the store
(`engine.store.protocol.OutboxStore.claim_commands`): its token and the end of
its lease are written on each command, and no two dispatchers, in one process
or several, ever hold the same command. A claimed command keeps its status
``pending``: it still blocks the later commands of its entity, so per-entity
order holds across dispatchers. The claimant renews the lease while the call
is under way and drops the claim when it records the outcome; the outcome is
written only if the claim is still its own. A claim whose lease ran out (its
process died) is taken over by the next dispatcher that looks; and a process
that takes the database's lock (`engine.store.lock`) voids every claim at once
(`void_claims`), since only a process that is gone can have made them.
"""

from __future__ import annotations

import os
import secrets
import socket


def new_token() -> str:
    """A dispatcher's claim token: host and pid for the operator, then a random
    part, so two dispatchers of one process never share a claim."""
    return f"{socket.gethostname()}/pid {os.getpid()}/{secrets.token_hex(4)}"


__all__ = ["new_token"]
