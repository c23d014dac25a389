"""The certificates HTTPS answers are verified against (loaded in the background)."""

from __future__ import annotations

import os
import ssl
import threading
from concurrent.futures import Future

from bot.core.errors import IndexError_

__all__ = ["load_certificates", "ssl_context"]

#: environment variables naming a CA bundle, in the order they are honoured
_CERT_VARS = ("SSL_CERT_FILE", "NIX_SSL_CERT_FILE")


def ssl_context() -> ssl.SSLContext:
    """A verifying client context over the configured or the system's certificates."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and host names
    for var in _CERT_VARS:
        bundle = os.environ.get(var)
        if bundle:
            try:
                ctx.load_verify_locations(cafile=bundle)
            except (OSError, ssl.SSLError) as exc:
                raise IndexError_(
                    f"cannot read the certificates in ${var}",
                    where=bundle,
                    hint=f"point {var} at a PEM bundle, or unset it to use the system's ({exc})",
                ) from exc
            return ctx
    # the system's store, as OpenSSL finds it (honouring $SSL_CERT_DIR): its bundle and its
    # hashed directory, whichever exist (Debian has both, Fedora's directory is not hashed)
    paths = ssl.get_default_verify_paths()
    cafile = paths.cafile if paths.cafile and os.path.isfile(paths.cafile) else None
    capath = paths.capath if paths.capath and os.path.isdir(paths.capath) else None
    if cafile or capath:
        ctx.load_verify_locations(cafile=cafile, capath=capath)
    else:
        try:
            import certifi  # only where the system has no store
        except ImportError:
            ctx.load_default_certs()
        else:
            ctx.load_verify_locations(cafile=certifi.where())
    return ctx


def load_certificates() -> Future[ssl.SSLContext]:
    """:func:`ssl_context` in a background thread.

    A CA bundle takes ~30 ms to parse, which OpenSSL does without holding the GIL: started
    when a run knows it will go online, it is ready by the first request instead of making
    every first request wait.  An error is raised to whoever takes the result.
    """
    fut: Future[ssl.SSLContext] = Future()

    def load() -> None:
        try:
            fut.set_result(ssl_context())
        except BaseException as exc:  # noqa: BLE001 - raised again to whoever takes it
            fut.set_exception(exc)

    threading.Thread(target=load, name="certificates", daemon=True).start()
    return fut
