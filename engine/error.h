/*
** error.h -- error.c's interface: the message a failure leaves in its
** store.
*/
#ifndef BC_ERROR_H
#define BC_ERROR_H

#include "bitcask.h"

#include <stddef.h>

/* Record a failure: "bitcask store '<dir>': <message>", returns st. */
bc_status bc_seterr(bc_store *s, bc_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with ": <strerror(errnum)>" appended. */
bc_status bc_seterr_errno(bc_store *s, bc_status st, int errnum,
                          const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));


/* Copy a message (a store's, or one of bc_open's own) out to a caller's err
** buffer of errlen bytes (nothing when err is NULL or errlen 0). */
void bc_copy_err(char *err, size_t errlen, const char *msg);

#endif /* BC_ERROR_H */
