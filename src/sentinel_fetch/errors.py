"""Every error sentinel-fetch raises, in one tree.

Catch :class:`SentinelFetchError` to catch them all. The command line maps the tree
to exit codes: :class:`InputError` and the credential errors are the user's to fix
(exit 2); everything else means the job could not be completed (exit 1).

Messages are one line, say what is wrong and, where we know it, what to do. They never
contain a token, a password or a proxy password: errors that carry a URL carry it
through :func:`sentinel_fetch.redact.redact_url`, and the base class masks every
registered secret in its message, both when it is raised and when it is shown, so a
secret a server quotes back (an echoed password, a quoted ``Authorization`` header)
stays hidden wherever the error is printed, logged or stored.

::

    SentinelFetchError
    ├── InputError                     exit 2: the user's input cannot be used
    │   ├── QueryError                 impossible dates, unknown collection, bad values
    │   │   ├── FilterSyntaxError      an OData $filter that does not parse
    │   │   └── BrowserURLError        a pasted Copernicus Browser URL that is unusable
    │   ├── AreaError                  WKT/GeoJSON/shapefile/bbox that is not a valid area
    │   ├── ConfigError                a bad config file or setting
    │   │   └── ProxyError             the proxy is not running or refuses our credentials
    │   ├── ResultFileError            a saved search result that cannot be read
    │   ├── LedgerFileError            no job ledger there, or a file that is not one
    │   ├── LedgerLocationError        a --ledger URL that cannot be used (bad, unreachable)
    │   ├── ProductNotFoundError       names or ids asked for that the catalogue does not hold
    │   ├── FolderInUseError           another run holds the save folder (pid, host, since)
    │   └── SelectionError             a band, file pattern or preset that cannot be used
    ├── AuthError                      the identity server refused us
    │   ├── CredentialsMissingError    exit 2: no username/password from any source
    │   ├── InvalidCredentialsError    exit 2: 401 invalid_grant (wrong password or TOTP)
    │   └── SessionLimitError          too many active sessions or a temporary ban (403)
    ├── ServiceError                   an HTTP error from a CDSE host (status, CDSE code)
    │   ├── CatalogueError             the OData catalogue
    │   │   └── UnreadableEntryError   one entry is not a usable product (that one fails)
    │   ├── DownloadServiceError       the download host (DAT-ZIP-* codes)
    │   └── StacError                  the STAC catalogue (file lists of products)
    ├── TransferError                  one product could not be fetched and verified
    │   ├── IntegrityError             size, checksum or zip test failed
    │   ├── ProductOfflineError        Online=false: order it in the Data Workspace
    │   ├── UnsafeNameError            a name from the server would escape the save folder
    │   └── InvalidProductIdError      an id that is not a UUID would change the download URL
    ├── SearchIncompleteError          paging failed after retries: no silently short list
    ├── StoppedError                   a stop was asked for (Ctrl-C, a stop event): not a failure
    ├── ClientClosedError              a closed :class:`~sentinel_fetch.client.Client` was used
    └── StorageError                   the disk refused (full, read-only, permission)
"""

from __future__ import annotations

from pathlib import Path

from sentinel_fetch.redact import redact

__all__ = [
    "AreaError",
    "AuthError",
    "BrowserURLError",
    "CatalogueError",
    "ClientClosedError",
    "ConfigError",
    "CredentialsMissingError",
    "DownloadServiceError",
    "FilterSyntaxError",
    "FolderInUseError",
    "InputError",
    "IntegrityError",
    "InvalidCredentialsError",
    "InvalidProductIdError",
    "LedgerFileError",
    "LedgerLocationError",
    "ProductNotFoundError",
    "ProductOfflineError",
    "ProxyError",
    "QueryError",
    "ResultFileError",
    "SearchIncompleteError",
    "SelectionError",
    "SentinelFetchError",
    "ServiceError",
    "SessionLimitError",
    "StacError",
    "StoppedError",
    "StorageError",
    "TransferError",
    "UnreadableEntryError",
    "UnsafeNameError",
]


class SentinelFetchError(Exception):
    """Base of every error raised by sentinel-fetch.

    The message is masked when the error is made (so ``args``, ``repr`` and pickles
    hold no secret) and again when it is shown (a secret registered later, such as a
    token refreshed after the error was made, is hidden too).
    """

    #: Exit status the command line uses for this error.
    exit_code: int = 1

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))

    def __str__(self) -> str:
        return redact(super().__str__())


class InputError(SentinelFetchError):
    """The user's input cannot be used; nothing was sent or changed."""

    exit_code = 2


class QueryError(InputError):
    """A search that cannot be run as given (impossible dates, unknown values...)."""


class FilterSyntaxError(QueryError):
    """An OData ``$filter`` expression that does not parse.

    Attributes:
        position: 0-based character offset of the problem in the filter, if known.
    """

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class BrowserURLError(QueryError):
    """A pasted search URL that is not a usable CDSE OData search URL."""


class AreaError(InputError):
    """An area of interest that is not a valid geometry in EPSG:4326."""


class ConfigError(InputError):
    """A configuration file or setting that cannot be used.

    Attributes:
        setting: the setting at fault (``workers``, ``proxy``...), when there is one;
            the config layer uses it to say where the bad value came from.
    """

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class ProxyError(ConfigError):
    """The configured proxy cannot be used: nothing listens there, or it refuses us.

    Retrying cannot help until the user starts the proxy or fixes its address or
    credentials, so every request that meets it stops, and so does the batch.
    """


class ResultFileError(InputError):
    """A saved search result file that cannot be read back."""


class LedgerFileError(InputError):
    """No job ledger where one was expected, or a file that is not a sentinel-fetch ledger.

    Raised before anything is written: a zero-length file, another program's SQLite
    database or a damaged entry is reported, never turned into a ledger or repaired.
    """


class LedgerLocationError(InputError):
    """A ledger location (``--ledger``) that cannot be used: not a folder or a
    ``postgresql://`` URL, a server that cannot be reached or refuses us, a database that
    is not a sentinel-fetch job, or psycopg (the ``postgresql`` extra) not installed.

    Raised when the ledger is opened, before anything is downloaded; the message shows
    the URL without its password. A server lost later, mid-run, is a
    :class:`StorageError` (the run cannot record what it does, so it stops).
    """


class ProductNotFoundError(InputError):
    """Product names or ids were asked for that the catalogue does not hold.

    Attributes:
        missing: the names or ids, as given.
    """

    def __init__(self, message: str, *, missing: list[str] | None = None) -> None:
        super().__init__(message)
        self.missing = list(missing or [])


class FolderInUseError(InputError):
    """Another run holds a folder this run would write (the save, temp or finish folder).

    Attributes:
        folder: the folder that is held.
        pid: the holding process, if it could be read.
        host: the machine it runs on, if it could be read.
    """

    def __init__(
        self,
        message: str,
        *,
        folder: Path | None = None,
        pid: int | None = None,
        host: str | None = None,
    ) -> None:
        super().__init__(message)
        self.folder = folder
        self.pid = pid
        self.host = host


class SelectionError(InputError):
    """A band name, file pattern or preset that cannot select files (``--bands B99``)."""


class AuthError(SentinelFetchError):
    """The identity server refused to give us a token."""


class CredentialsMissingError(AuthError):
    """No CDSE username/password could be found in any configured source."""

    exit_code = 2


class InvalidCredentialsError(AuthError):
    """The identity server rejected the username, password or TOTP code."""

    exit_code = 2


class SessionLimitError(AuthError):
    """CDSE refuses new logins: probably the active-session limit, or a temporary ban.

    Raised for ``sessionLimitExceeded`` and for any 403 from the token endpoint: CDSE's
    own answer for either case was never captured, and both call for the same thing,
    no further login attempts for a while.
    """


class ServiceError(SentinelFetchError):
    """An HTTP error answer from a CDSE host.

    Attributes:
        status: HTTP status code (0 when the connection itself failed).
        code: CDSE error code from the body (e.g. ``DAT-ZIP-100``), if any.
        retry_after_s: the server's ``Retry-After`` in seconds, if it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str | None = None,
        retry_after_s: float | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after_s = retry_after_s
        self._transient = transient

    @property
    def transient(self) -> bool:
        """Whether trying again later may succeed (connection failures, 429, 5xx).

        Some failures without a status are not worth a retry (a certificate that does
        not verify, a redirect we refuse); they say so explicitly.
        """
        if self._transient is not None:
            return self._transient
        return self.status == 0 or self.status in (408, 425, 429) or self.status >= 500


class CatalogueError(ServiceError):
    """An error answer from the OData catalogue."""


class UnreadableEntryError(CatalogueError):
    """One entry of a catalogue answer cannot be used as a product; the rest can.

    Attributes:
        reason: what is wrong with the entry (names the field), one line.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, status=200)
        self.reason = reason


class DownloadServiceError(ServiceError):
    """An error answer from the download host (``DAT-ZIP-*`` codes)."""


class StacError(ServiceError):
    """The STAC catalogue could not list a product's files (after retries)."""


class TransferError(SentinelFetchError):
    """One product could not be fetched and verified.

    Attributes:
        attempts: transfer attempts made before giving up (0 if none was made).
        bytes_received: bytes fetched for it in this run before giving up (they count
            against the account's transfer quota all the same).
    """

    attempts: int = 0
    bytes_received: int = 0


class IntegrityError(TransferError):
    """The bytes received do not match the catalogue's size or checksum."""


class ProductOfflineError(TransferError):
    """The product is offline (Deferred Available Data); it must be ordered first."""


class UnsafeNameError(TransferError):
    """A product name that would place a file outside the save folder."""


class InvalidProductIdError(TransferError):
    """A product id that is not a UUID: put into a URL, it would change the path."""


class SearchIncompleteError(SentinelFetchError):
    """Paging through results failed after retries; a partial list is never returned."""


class StoppedError(SentinelFetchError):
    """A stop was asked for (a stop event set, Ctrl-C) while waiting or transferring.

    Attributes:
        bytes_received: bytes an interrupted transfer had written (they stay on disk).
    """

    bytes_received: int = 0

    def __init__(self, message: str = "stopped before it finished") -> None:
        super().__init__(message)


class ClientClosedError(SentinelFetchError, RuntimeError):
    """A :class:`~sentinel_fetch.client.Client` was used after ``close()``.

    Its connections and its login are gone; make a new Client (a RuntimeError too, as
    using a closed file is).
    """


class StorageError(SentinelFetchError):
    """The file system refused a write (disk full, read-only, no permission)."""
