/* vigilctl's output of the daemon's answers. */
#ifndef VIGIL_VIGILCTL_PRINT_H
#define VIGIL_VIGILCTL_PRINT_H

#include <jansson.h>

/* o[key] if it is a string, else dflt. */
const char *str_or(json_t *o, const char *key, const char *dflt);
void print_status(json_t *res);
/* 0, or 1 if some node refused (--all); refusals go to stderr. */
int print_action(json_t *res);
void print_log(json_t *res);
void print_json(json_t *res);

/* vigilctl pool status|queue|log without --json. */
void print_pool(const char *what, json_t *res);

#endif
