"""The audit trail: recording, the hash chain and its verification, signed exports."""
