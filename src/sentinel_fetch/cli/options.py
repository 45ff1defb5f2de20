"""Options shared by ``search`` and ``download``, and turning them into a Query."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from sentinel_fetch.client import Query, Shard
    from sentinel_fetch.settings import Settings

__all__ = [
    "SEARCH_FIELDS",
    "Command",
    "NonEmptyValues",
    "finish_dir_option",
    "global_parameters",
    "json_option",
    "ledger_option",
    "network_options",
    "out_option",
    "query_from_options",
    "quota_stop_option",
    "search_options",
    "selection_options",
    "shard_option",
    "totp_option",
]

F = TypeVar("F", bound=Callable[..., Any])

# Option name -> build_query keyword. Repeated options and comma lists mean OR.
SEARCH_FIELDS = {
    "collection": "collections",
    "product_type": "product_types",
    "start": "start",
    "end": "end",
    "area": "area",
    "max_cloud_cover": "max_cloud_cover",
    "tile": "tiles",
    "relative_orbit": "relative_orbits",
    "orbit_direction": "orbit_direction",
    "platform": "platforms",
    "online": "online",
    "name_contains": "name_contains",
    "baseline": "processing_baselines",
    "extra_filter": "extra_filters",
    "order_by": "order_by",
}
_LISTS = {
    "bands",
    "collection",
    "product_type",
    "tile",
    "relative_orbit",
    "platform",
    "name_contains",
    "baseline",
}


def _refuse_empty(ctx: click.Context, param: click.Parameter, value: object) -> None:
    if isinstance(value, str) and not value.strip():
        raise click.BadParameter(
            "the value is empty (an unset shell variable?): give a value, or leave the option out",
            ctx=ctx,
            param=param,
        )


def _global(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Apply a global option wherever it was written: before the command or after it."""
    from sentinel_fetch.cli.context import CliContext

    if value is None or value is False or value == 0:
        return
    _refuse_empty(ctx, param, value)
    context = ctx.ensure_object(CliContext)
    if param.name == "verbose":
        context.verbose += int(value)
    elif param.name == "quiet":
        context.quiet = True
    elif param.name == "log_file":
        context.log_file = str(value)
    elif param.name == "config_file":
        context.config_file = str(value)
    if ctx.parent is not None:  # after the command: logging was set up already
        context.set_up_logging()


def global_parameters() -> list[click.Parameter]:
    """The options every command accepts, before or after its name; declared once here."""
    return [
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_global,
            help="More detail on stderr (-vv for debug).",
        ),
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            callback=_global,
            help="Only errors; no progress bars.",
        ),
        click.Option(
            ["--log-file"],
            type=click.Path(dir_okay=False, writable=True),
            expose_value=False,
            callback=_global,
            help="Also write a detailed (debug) log to this file; secrets are masked.",
        ),
        click.Option(
            ["--config", "config_file"],
            type=click.Path(dir_okay=False),
            expose_value=False,
            callback=_global,
            help="Use this config file instead of ./sentinel-fetch.toml.",
        ),
    ]


#: Older spellings kept working for scripts, hidden from help: parameter -> the one it
#: stands for. ``download -o DIR`` (now ``--out``; ``-o`` is search's output file) and
#: the job folder given positionally to ``status`` and ``verify``.
_ALIAS_PARAMETERS = {"out_short": "save_path", "save_path_argument": "save_path"}


class NonEmptyValues:
    """Refuse an empty value for any option or argument, and an empty item in a list.

    ``-c "$COLLECTION"`` with the variable unset passes ``""``; dropping it silently
    would search every collection. So an empty (or blank) value is a usage error naming
    the option, exit 2, and so is an empty item in a comma list (``-t "L2A,"``): the
    trailing comma usually means a value went missing. Mixed into every command class.
    """

    params: list[click.Parameter]

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse as click does, then check every value given."""
        rest: list[str] = super().parse_args(ctx, args)  # type: ignore[misc]
        for param in self.params:
            value = ctx.params.get(param.name or "")
            for item in value if isinstance(value, tuple) else (value,):
                if not isinstance(item, str):
                    continue
                if not item.strip():
                    raise click.BadParameter(
                        "the value is empty (an unset shell variable?): give a value, or "
                        "leave the option out",
                        ctx=ctx,
                        param=param,
                    )
                if param.name in _LISTS and not all(part.strip() for part in item.split(",")):
                    raise click.BadParameter(
                        f"{item!r} has an empty item: separate values with single commas",
                        ctx=ctx,
                        param=param,
                    )
        for alias, name in _ALIAS_PARAMETERS.items():
            if alias not in ctx.params:
                continue
            value = ctx.params.pop(alias)
            if value is None:
                continue
            given = ctx.get_parameter_source(name) not in (
                None,
                click.core.ParameterSource.DEFAULT,
                click.core.ParameterSource.DEFAULT_MAP,
            )
            if given and ctx.params.get(name) not in (None, value):
                raise click.UsageError(
                    f"the save folder is given twice ({value} and {ctx.params[name]}): "
                    "give it once, with --out",
                    ctx=ctx,
                )
            ctx.params[name] = value
        return rest


class Command(NonEmptyValues, click.Command):
    """A sentinel-fetch command: click's, with no empty values (see :class:`NonEmptyValues`),
    the global options accepted after its name too, and the older spellings of options.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(global_parameters())


def out_option(*, default: str | None = None, help: str) -> Callable[[F], F]:
    """``--out DIR``, the save folder (job folder) of every command that has one.

    ``-o`` meant this in ``download`` and ``demo``; it stays as a hidden alias there for
    scripts, while ``-o`` in help means ``search --output`` only.
    """

    def decorate(function: F) -> F:
        function = click.option("-o", "out_short", hidden=True, type=click.Path(file_okay=False))(
            function
        )
        return click.option(
            "--out",
            "save_path",
            default=default,
            show_default=default is not None,
            type=click.Path(file_okay=False),
            help=help,
        )(function)

    return decorate


def finish_dir_option(help: str) -> Callable[[F], F]:
    """``--finish-dir DIR``: verified products, when not ``<out>/Finish``."""
    return click.option("--finish-dir", type=click.Path(file_okay=False), help=help)


def ledger_option(function: F) -> F:
    """``--ledger LOCATION``: the job's ledger, when not the save folder's SQLite file.

    A ``postgresql://user@host/db`` URL shares one job among workers on many machines;
    a folder names another save folder's ledger. The value goes to the settings as the
    ``ledger`` key (config file: top-level ``ledger = "..."``; SENTINEL_FETCH_LEDGER).
    """
    return click.option(
        "--ledger",
        "ledger",
        metavar="LOCATION",
        help="The job's ledger: a postgresql:// URL (a job shared by many machines) or a "
        "folder; default: the save folder's SQLite ledger.",
    )(function)


def json_option(function: F) -> F:
    """``--json``: machine-readable output instead of text for people."""
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(
        function
    )


def totp_option(function: F) -> F:
    """``--totp CODE``: the one-time code of an account with two-factor authentication."""
    return click.option(
        "--totp", metavar="CODE", help="6-digit code for an account with two-factor authentication."
    )(function)


def search_options(function: F) -> F:
    """Decorate a command with every search option."""
    options = [
        click.option(
            "--url",
            metavar="URL",
            help="A search URL copied from the Copernicus Browser (developer tools, Network "
            "tab, the request to .../odata/v1/Products). Every result is fetched, not just "
            "the first page.",
        ),
        click.option(
            "--url-file",
            type=click.Path(exists=True, dir_okay=False),
            help="A file holding such a URL, e.g. SearchURL.txt.",
        ),
        click.option(
            "-c",
            "--collection",
            multiple=True,
            help="SENTINEL-1, SENTINEL-2, SENTINEL-3, SENTINEL-5P (S1, S2... also work).",
        ),
        click.option(
            "-t",
            "--product-type",
            multiple=True,
            help="L1C, L2A, GRD, SLC, IW_GRDH_1S, L2__NO2___, OL_1_EFR___...",
        ),
        click.option(
            "-s", "--start", help="Sensing start, UTC: 2023-06-01 or 2023-06-01T10:00:00Z."
        ),
        click.option("-e", "--end", help="Sensing end, UTC; a date includes that whole day."),
        click.option(
            "-a",
            "--area",
            help="Area of interest: WKT, GeoJSON (text or .geojson file), a shapefile (.shp), "
            "a GeoPackage (.gpkg) or a bbox west,south,east,north.",
        ),
        click.option(
            "--cloud", "max_cloud_cover", type=float, help="Maximum cloud cover, percent."
        ),
        click.option("--tile", multiple=True, help="MGRS tile, e.g. 32TQM (Sentinel-2)."),
        click.option("--orbit", "relative_orbit", multiple=True, help="Relative orbit number."),
        click.option(
            "--direction",
            "orbit_direction",
            type=click.Choice(["ascending", "descending"], case_sensitive=False),
            help="Orbit direction (Sentinel-1).",
        ),
        click.option("--platform", multiple=True, help="Satellite: A, B or C (e.g. S2A)."),
        click.option(
            "--online/--offline",
            "online",
            default=None,
            help="Only online (immediately downloadable) or only offline products.",
        ),
        click.option("--name", "name_contains", multiple=True, help="Part of the product name."),
        click.option("--baseline", multiple=True, help="Processing baseline, e.g. 05.09 or N0509."),
        click.option(
            "--filter",
            "extra_filter",
            multiple=True,
            metavar="ODATA",
            help="An extra OData $filter condition, ANDed (advanced).",
        ),
        click.option(
            "--order",
            "order_by",
            help="ContentDate/Start, ContentDate/End, PublicationDate or ModificationDate, "
            "then asc or desc (default: ContentDate/Start asc, oldest first).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def network_options(function: F) -> F:
    """Options that change how the network is reached."""
    options = [
        click.option(
            "--proxy",
            metavar="URL",
            help="http://host:port or socks5h://host:port (user:password@ allowed). "
            "Default: HTTPS_PROXY / ALL_PROXY / the system proxy.",
        ),
        click.option(
            "--ca-bundle",
            type=click.Path(exists=True, dir_okay=False),
            help="Extra trusted certificate authorities (PEM), e.g. a company proxy's.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _preset_help() -> str:
    from sentinel_fetch.client import PRESETS

    listed = "; ".join(f"{name}: {preset.help}" for name, preset in PRESETS.items())
    return f"A named set of files. {listed}."


def selection_options(function: F) -> F:
    """``--bands``, ``--files`` and ``--preset``: fetch only some files of each product."""
    from sentinel_fetch.client import PRESETS

    options = [
        click.option(
            "--bands",
            multiple=True,
            metavar="LIST",
            help="Only these bands, e.g. B04,B08,SCL (a name takes the finest resolution the "
            "product has; B04_20m picks one; VV/VH for Sentinel-1). Files land in "
            "<finish>/<name>.SAFE/, each verified.",
        ),
        click.option(
            "--files",
            multiple=True,
            metavar="GLOB",
            help="Only files whose path inside the SAFE matches, e.g. 'GRANULE/*/MTD_TL.xml' "
            "(* also crosses folders; repeatable).",
        ),
        click.option(
            "--preset",
            type=click.Choice(list(PRESETS), case_sensitive=False),
            help=_preset_help(),
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _split(values: tuple[str, ...]) -> list[str]:
    # Empty items were refused with the option named; none is dropped here.
    return [part.strip() for value in values for part in value.split(",")]


def query_from_options(
    options: dict[str, Any], settings: Settings, *, required: bool = True
) -> Query | None:
    """Build the Query from a pasted URL (or file) and/or search options.

    Options given alongside a URL refine it (they replace the same fields).

    Raises:
        click.UsageError: nothing to search for (when ``required``), or both --url and --url-file.
    """
    from sentinel_fetch.client import make_query, read_search_url_file

    url = options.get("url")
    url_file = options.get("url_file")
    if url and url_file:
        raise click.UsageError("give either --url or --url-file, not both")
    if url_file:
        url = read_search_url_file(url_file)
    fields: dict[str, Any] = {}
    for option, field in SEARCH_FIELDS.items():
        value = options.get(option)
        if value is None or value == ():
            continue
        if option in _LISTS:
            value = _split(value)
        elif option == "extra_filter":
            value = list(value)
        fields[field] = value
    if not url and not fields:
        if required:
            raise click.UsageError(
                "nothing to search for: give --url/--url-file (a Copernicus Browser search) "
                "or search options such as --collection, --start, --area"
            )
        return None
    return make_query(url, settings, **fields)


def _shard(ctx: click.Context, param: click.Parameter, value: str | None) -> Shard | None:
    """``--shard K/N``, checked before any search or login."""
    from sentinel_fetch.client import parse_shard

    if value is None:
        return None
    try:
        return parse_shard(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _quota_stop(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--quota-stop``: its form checked at once (the account's quota is known later)."""
    from sentinel_fetch.client import parse_quota_stop

    if value is None:
        return None
    try:
        parse_quota_stop(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


def shard_option(function: F) -> F:
    """``--shard K/N``: this task's share of a batch, for clusters without a shared ledger."""
    return click.option(
        "--shard",
        metavar="K/N",
        callback=_shard,
        help="Take only part K of N of the batch, split by a stable hash of the product id: "
        "for cluster tasks without a shared ledger (SLURM arrays, Kubernetes indexed jobs).",
    )(function)


def quota_stop_option(function: F) -> F:
    """``--quota-stop``: stop before the account's 30-day volume is used up."""
    return click.option(
        "--quota-stop",
        metavar="SHARE|BYTES",
        callback=_quota_stop,
        help="Stop taking products before the account's 30-day volume reaches this share "
        "of its quota (95%) or this many bytes (11TB); products not started stay queued.",
    )(function)
