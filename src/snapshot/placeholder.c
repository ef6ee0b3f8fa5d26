/* placeholder.c - keeps the snapshot part's library non-empty until it has sources. */
int tm_snapshot_placeholder_(void);
int tm_snapshot_placeholder_(void) { return 0; }
