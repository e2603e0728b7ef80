/* Look-up in the embedded console files. */
#include <string.h>

#include "console/assets.h"

const struct console_asset *console_asset_find(const char *path)
{
	if (!path)
		return NULL;
	if (!strcmp(path, "/"))
		path = "/index.html";
	for (const struct console_asset *a = console_assets; a->path; a++) {
		if (!strcmp(a->path, path))
			return a;
	}
	return NULL;
}
