/* placeholder.c - keeps the storage part's library non-empty until it has sources. */
int tm_storage_placeholder_(void);
int tm_storage_placeholder_(void) { return 0; }
