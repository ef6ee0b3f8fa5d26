/* placeholder.c - keeps the migrate part's library non-empty until it has sources. */
int tm_migrate_placeholder_(void);
int tm_migrate_placeholder_(void) { return 0; }
