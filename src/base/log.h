/* log.h - leveled, per-component logging (STYLE §7).
 *
 * Library code never prints; it calls tw_log. One line per call on stderr (or the sink set by
 * tw_log_set_sink), "twin: warn: crawl: fetch 'x' failed: ...". The level comes from
 * TWIN_LOG_LEVEL (error|warn|info|debug, default warn) and components from TWIN_LOG, a comma list
 * such as "all,-http" (default all). Thread-safe: each line is written with one call.
 */
#ifndef TW_LOG_H
#define TW_LOG_H

#include <stdarg.h>

enum tw_log_level { TW_LOG_ERROR = 0, TW_LOG_WARN, TW_LOG_INFO, TW_LOG_DEBUG };

void tw_log(enum tw_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tw_logv(enum tw_log_level level, const char *component, const char *fmt, va_list ap);
/* True when a line at this level and component would be written. */
int tw_log_enabled(enum tw_log_level level, const char *component);
/* Overrides the environment: level, and a component list like TWIN_LOG (NULL keeps it). */
void tw_log_configure(enum tw_log_level level, const char *components);
/* Redirects lines to fn (NULL restores stderr). */
void tw_log_set_sink(void (*fn)(void *ctx, enum tw_log_level, const char *line), void *ctx);

#endif
