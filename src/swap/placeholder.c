/* placeholder.c - keeps the swap part's library non-empty until it has sources. */
int tm_swap_placeholder_(void);
int tm_swap_placeholder_(void) { return 0; }
