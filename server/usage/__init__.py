"""Usage: the ledger of every user's stored bytes, and the storage quota of their tier.

Other domains call ``charge_file`` when they store a file for a user (it refuses with
``StorageQuotaExceededError`` when the file does not fit) and ``release_file`` when the
row naming it goes away; both act inside the caller's transaction.
"""

from .service import UsageService, charge_file, release_file

__all__ = ["UsageService", "charge_file", "release_file"]
