/* fuzz_csv.c - the CSV reader on arbitrary bytes: no crash, no leak, progress on every call
 * (errors resume at the next line, so the loop ends), fields within the record bound. */
#include "base/mem.h"
#include "collect/collect.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct csv_reader r;
    struct tw_err err = TW_ERR_INIT;
    size_t calls = 0;
    int rc;
    csv_init(&r, (const char *)data, size);
    while ((rc = csv_next(&r, &err)) != 0) {
        tw_err_clear(&err);
        if (++calls > size + 1)
            abort(); // no progress
        if (rc < 0)
            continue;
        if (r.n_fields < 1 || r.n_fields > CSV_FIELDS_MAX)
            abort();
        for (int i = 0; i < r.n_fields; i++)
            if (r.field_len[i] > CSV_RECORD_MAX || strlen(r.field[i]) > r.field_len[i])
                abort();
    }
    csv_release(&r);
    return 0;
}
