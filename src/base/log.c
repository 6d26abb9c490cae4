/* log.c - leveled component logging to stderr. */
#include "base/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static enum tw_log_level log_level = TW_LOG_WARN;
static char log_components[256] = "all";
static void (*log_sink)(void *, enum tw_log_level, const char *);
static void *log_sink_ctx;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void log_init(void)
{
    const char *lv = getenv("TWIN_LOG_LEVEL");
    const char *comp = getenv("TWIN_LOG");
    if (lv) {
        for (int i = 0; i < 4; i++)
            if (!strcmp(lv, level_names[i]))
                log_level = (enum tw_log_level)i;
    }
    if (comp)
        snprintf(log_components, sizeof(log_components), "%s", comp);
}

void tw_log_configure(enum tw_log_level level, const char *components)
{
    pthread_once(&log_once, log_init);
    log_level = level;
    if (components)
        snprintf(log_components, sizeof(log_components), "%s", components);
}

void tw_log_set_sink(void (*fn)(void *ctx, enum tw_log_level, const char *line), void *ctx)
{
    log_sink = fn;
    log_sink_ctx = ctx;
}

/* "all,-http": later entries win; "none" disables everything. */
static int component_enabled(const char *component)
{
    const char *p = log_components;
    int on = 0;
    size_t clen = strlen(component);

    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int neg = n && p[0] == '-';
        const char *name = p + neg;
        size_t nlen = n - (size_t)neg;
        if ((nlen == 3 && !strncmp(name, "all", 3)) || (nlen == clen && !strncmp(name, component, clen)))
            on = !neg;
        else if (nlen == 4 && !strncmp(name, "none", 4))
            on = 0;
        p += n;
        if (*p == ',')
            p++;
    }
    return on;
}

int tw_log_enabled(enum tw_log_level level, const char *component)
{
    pthread_once(&log_once, log_init);
    if (level > log_level)
        return 0;
    return level == TW_LOG_ERROR || component_enabled(component);
}

void tw_logv(enum tw_log_level level, const char *component, const char *fmt, va_list ap)
{
    char line[1024];
    int n;

    if (!tw_log_enabled(level, component))
        return;
    n = snprintf(line, sizeof(line), "twin: %s: %s: ", level_names[level], component);
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    if (log_sink) {
        log_sink(log_sink_ctx, level, line);
        return;
    }
    fprintf(stderr, "%s\n", line);
}

void tw_log(enum tw_log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tw_logv(level, component, fmt, ap);
    va_end(ap);
}
