/* progress.h - progress of a long step: a redrawn bar on a terminal, plain lines otherwise
 * (DESIGN §5).
 *
 *     struct tw_progress p;
 *     tw_progress_init(&p, stderr, "import", total);   // total 0: unknown
 *     for (...) tw_progress_update(&p, done);
 *     tw_progress_finish(&p);
 *
 * On a TTY (isatty) the line "import  [#####.....]  42/100  42%  1.2k/s" is redrawn in place at
 * most 10 times a second. Otherwise one plain line "import: 42/100 (42%)" is written at most
 * every 'interval_ms' (default 2000 ms) and a final line at the end, so logs stay short.
 * The caller owns the stream (library code passes the stream its caller gave it; STYLE §7).
 * One thread drives a progress value.
 */
#ifndef TW_PROGRESS_H
#define TW_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct tw_progress {
    FILE *out;           // where to write; NULL disables all output
    char label[48];      // shown first
    uint64_t total;      // 0 when unknown
    uint64_t done;       // last value given
    bool tty;            // redraw in place
    int64_t start_ms;    // monotonic start time
    int64_t last_ms;     // monotonic time of the last line written
    int64_t interval_ms; // plain mode: min time between lines
    int width;           // characters of the last tty line (to clear it)
};

void tw_progress_init(struct tw_progress *p, FILE *out, const char *label, uint64_t total);
/* Records 'done' units; writes a line if one is due. */
void tw_progress_update(struct tw_progress *p, uint64_t done);
/* Writes the final line (with elapsed time and rate) and ends the tty line. */
void tw_progress_finish(struct tw_progress *p);
/* Formats the current line into buf (what update would write, without control characters).
 * Exposed for tests. */
int tw_progress_format(const struct tw_progress *p, int64_t now_ms, char *buf, size_t buf_len);

#endif
