"""The four defense layers of the seed strategy, one module each:
backup (1, automated full backups), pitr (2, WAL streaming), verify (3, verification), offsite (4)."""
