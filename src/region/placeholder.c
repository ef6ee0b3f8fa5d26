/* placeholder.c - keeps the region part's library non-empty until it has sources. */
int tm_region_placeholder_(void);
int tm_region_placeholder_(void) { return 0; }
