"""Options shared by ``search`` and ``download``, and turning them into a Query."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from sentinel_fetch.client import Query
    from sentinel_fetch.settings import Settings

__all__ = [
    "SEARCH_FIELDS",
    "Command",
    "NonEmptyValues",
    "network_options",
    "query_from_options",
    "search_options",
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
    "collection",
    "product_type",
    "tile",
    "relative_orbit",
    "platform",
    "name_contains",
    "baseline",
}


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
        return rest


class Command(NonEmptyValues, click.Command):
    """A sentinel-fetch command: click's, with no empty values (see :class:`NonEmptyValues`)."""


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
