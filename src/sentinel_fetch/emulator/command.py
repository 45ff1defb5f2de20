"""The emulator's one command line: ``python -m sentinel_fetch.emulator`` and
``sentinel-fetch emulator`` are this click command (the CLI only mounts it).

``--verbose`` logs every answered request (host, method, path, status, bytes) and the
connection chatter to stderr, whichever entry point started it: the handler belongs to
the emulator's own logger, so a logging set-up made before (the CLI's) neither hides nor
doubles it.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import click

from .config import EmulatorConfig
from .standalone import run

__all__ = ["emulator", "parse_amount"]

_UNITS = {
    "": 1,
    "B": 1,
    "K": 1000,
    "KB": 1000,
    "M": 1000**2,
    "MB": 1000**2,
    "G": 1000**3,
    "GB": 1000**3,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
}


def parse_amount(text: str) -> float:
    """An amount of bytes with an optional unit (and ``/s``).

    Example:
        >>> parse_amount("1GiB"), parse_amount("20MB/s"), parse_amount("5000")
        (1073741824.0, 20000000.0, 5000.0)
    """
    match = re.fullmatch(r"\s*([0-9.]+(?:[eE][0-9]+)?)\s*([A-Za-z/]*)\s*", text)
    unit = match.group(2).upper().removesuffix("/S") if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"not an amount of bytes: {text!r} (try 1GiB, 20MB)")
    return float(match.group(1)) * _UNITS[unit]


def _amount_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """``--product-size`` and ``--bandwidth``: bytes (per second) with units."""
    if value is None:
        return None
    try:
        return parse_amount(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _log_requests() -> None:
    """Every emulator log line, requests included, to stderr."""
    logger = logging.getLogger("sentinel_fetch.emulator")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    # The CLI's root handler would print the same lines again (or drop them, at WARNING).
    logger.propagate = False


@click.command(
    "emulator", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.option("--no-tls", is_flag=True, help="Serve plain HTTP instead of HTTPS.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port-base",
    type=click.IntRange(min=0, max=65529),
    default=0,
    metavar="N",
    help="Identity on N, catalogue N+1, download N+2, zipper N+3, STAC N+4, quicklook N+5 "
    "and N+6 (default: free ports).",
)
@click.option("--scale", type=float, metavar="F", help="Archive size = nominal × F.")
@click.option(
    "--product-size",
    callback=_amount_option,
    metavar="BYTES",
    help="Every archive about this size (1GiB).",
)
@click.option(
    "--bandwidth", callback=_amount_option, metavar="BPS", help="Per-connection cap (CDSE: 20MB)."
)
@click.option("--no-range", is_flag=True, help="Ignore Range headers.")
@click.option(
    "--max-downloads", type=int, metavar="N", help="Concurrent streams per user (default 4)."
)
@click.option(
    "--stac-rate",
    type=float,
    metavar="N",
    help="STAC requests per second per client before 429 (CDSE: about 5; 0: no limit).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="D",
    help="Cache folder (default: SENTINEL_FETCH_EMULATOR_DIR or the user cache).",
)
@click.option("--seed", type=int, help="Seed of the synthetic catalogue.")
@click.option("--latency", type=float, metavar="S", help="Added delay per request.")
@click.option("--expire-midstream", is_flag=True, help="Cut streams whose token expires.")
@click.option("--verbose", is_flag=True, help="Log every request and connection to stderr.")
def emulator(
    *,
    no_tls: bool,
    host: str,
    port_base: int,
    scale: float | None,
    product_size: float | None,
    bandwidth: float | None,
    no_range: bool,
    max_downloads: int | None,
    stac_rate: float | None,
    data_dir: Path | None,
    seed: int | None,
    latency: float | None,
    expire_midstream: bool,
    verbose: bool,
) -> int:
    """Run a local CDSE emulator (identity, catalogue, download, STAC) until Ctrl+C.

    Prints the endpoints, a demo account and the environment variables that point
    sentinel-fetch at it.
    """
    config = EmulatorConfig(tls=not no_tls, host=host)
    if port_base:
        config.identity_port = port_base
        config.catalogue_port = port_base + 1
        config.download_port = port_base + 2
        config.zipper_port = port_base + 3
        config.stac_port = port_base + 4
        config.quicklook_port = port_base + 5
        config.quicklook_files_port = port_base + 6
    if scale is not None:
        config.size_scale = scale
    if product_size is not None:
        config.product_size_bytes = int(product_size)
    if bandwidth is not None:
        config.bandwidth_bytes_per_s = bandwidth
    if no_range:
        config.range_supported = False
    if max_downloads is not None:
        config.max_concurrent_downloads = max_downloads
    if stac_rate is not None:
        config.stac_requests_per_s = stac_rate or None
    if data_dir is not None:
        config.data_dir = data_dir
    if seed is not None:
        config.seed = seed
    if latency is not None:
        config.latency_s = latency
    config.expire_midstream = expire_midstream
    if verbose:
        _log_requests()
    run(config, announce=lambda line: click.echo(line))
    return 0
