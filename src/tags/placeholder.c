/* placeholder.c - keeps the tags part's library non-empty until it has sources. */
int tm_tags_placeholder_(void);
int tm_tags_placeholder_(void) { return 0; }
