/* The web console's files, embedded in vigild at build time
 * (scripts/embed-assets.py writes the table from src/console/). */
#ifndef VIGIL_CONSOLE_ASSETS_H
#define VIGIL_CONSOLE_ASSETS_H

#include <stddef.h>

struct console_asset {
	const char *path; /* "/index.html", "/i18n/fr.json" */
	const char *type; /* Content-Type */
	const unsigned char *data; /* data[len] is a NUL, not part of the file */
	size_t len;
};

/* Ended by an entry whose path is NULL. */
extern const struct console_asset console_assets[];

/* The asset at PATH (a URL path without query string; "/" is "/index.html"),
 * or NULL. Matches exactly, so "/../x" and the like find nothing. */
const struct console_asset *console_asset_find(const char *path);

#endif
