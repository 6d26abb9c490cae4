/* progress.c - terminal progress bar and plain progress lines. */
#include "base/progress.h"

#include "base/time.h"

#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 24

void tw_progress_init(struct tw_progress *p, FILE *out, const char *label, uint64_t total)
{
    memset(p, 0, sizeof(*p));
    p->out = out;
    snprintf(p->label, sizeof(p->label), "%s", label ? label : "");
    p->total = total;
    p->tty = out && isatty(fileno(out));
    p->start_ms = tw_time_mono_ms();
    p->last_ms = p->start_ms;
    p->interval_ms = 2000;
}

static void human_rate(double r, char *buf, size_t n)
{
    if (r >= 1e6)
        snprintf(buf, n, "%.1fM/s", r / 1e6);
    else if (r >= 1e3)
        snprintf(buf, n, "%.1fk/s", r / 1e3);
    else
        snprintf(buf, n, "%.1f/s", r);
}

int tw_progress_format(const struct tw_progress *p, int64_t now_ms, char *buf, size_t buf_len)
{
    char rate[32];
    double secs = (double)(now_ms - p->start_ms) / 1000.0;
    human_rate(secs > 0 ? (double)p->done / secs : 0.0, rate, sizeof(rate));
    if (p->total == 0)
        return snprintf(buf, buf_len, "%s: %llu  %s", p->label, (unsigned long long)p->done, rate);
    uint64_t done = p->done > p->total ? p->total : p->done;
    int pct = (int)(done * 100 / p->total);
    if (!p->tty)
        return snprintf(buf, buf_len, "%s: %llu/%llu (%d%%)", p->label, (unsigned long long)done,
                        (unsigned long long)p->total, pct);
    char bar[BAR_WIDTH + 1];
    int fill = (int)(done * BAR_WIDTH / p->total);
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = 0;
    return snprintf(buf, buf_len, "%s  [%s]  %llu/%llu  %3d%%  %s", p->label, bar,
                    (unsigned long long)done, (unsigned long long)p->total, pct, rate);
}

static void emit(struct tw_progress *p, int64_t now)
{
    char line[160];
    int n = tw_progress_format(p, now, line, sizeof(line));
    if (n < 0)
        return;
    if (p->tty) {
        int pad = p->width > n ? p->width - n : 0;
        fprintf(p->out, "\r%s%*s", line, pad, "");
        p->width = n;
    } else {
        fprintf(p->out, "%s\n", line);
    }
    fflush(p->out);
    p->last_ms = now;
}

void tw_progress_update(struct tw_progress *p, uint64_t done)
{
    int64_t now;
    p->done = done;
    if (!p->out)
        return;
    now = tw_time_mono_ms();
    if (now - p->last_ms < (p->tty ? 100 : p->interval_ms))
        return;
    emit(p, now);
}

void tw_progress_finish(struct tw_progress *p)
{
    int64_t now;
    if (!p->out)
        return;
    now = tw_time_mono_ms();
    emit(p, now);
    if (p->tty)
        fputc('\n', p->out);
    fflush(p->out);
}
