"""What drills leave: the result record, the append-only history, the summary table."""
