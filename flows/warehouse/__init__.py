"""SQLAlchemy engines, loaders, the load ledger and the quarantine."""
