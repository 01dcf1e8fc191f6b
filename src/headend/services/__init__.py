"""Use cases: the only layer that opens transactions and combines protocol, vee and store."""
