"""``python -m sentinel_fetch.emulator``: run the CDSE emulator in the foreground."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from .config import EmulatorConfig
from .standalone import run

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


def _amount(text: str) -> float:
    """``"1GiB"`` -> 1073741824, ``"20MB"`` -> 2e7, ``"5000"`` -> 5000."""
    match = re.fullmatch(r"\s*([0-9.]+(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper().removesuffix("/S") if match else None
    if match is None or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"not an amount of bytes: {text!r} (try 1GiB, 20MB)")
    return float(match.group(1)) * _UNITS[unit]


def _size(text: str) -> int:
    return int(_amount(text))


def parser() -> argparse.ArgumentParser:
    """The command line of the standalone emulator."""
    parse = argparse.ArgumentParser(
        prog="python -m sentinel_fetch.emulator",
        description="Run a local CDSE emulator (identity, catalogue, download, STAC) until Ctrl+C.",
    )
    parse.add_argument("--no-tls", action="store_true", help="serve plain HTTP instead of HTTPS")
    parse.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parse.add_argument(
        "--port-base",
        type=int,
        default=0,
        metavar="N",
        help=(
            "identity on N, catalogue N+1, download N+2, zipper N+3, STAC N+4, quicklook "
            "N+5 and N+6 (default: free ports)"
        ),
    )
    parse.add_argument("--scale", type=float, metavar="F", help="archive size = nominal × F")
    parse.add_argument(
        "--product-size", type=_size, metavar="BYTES", help="every archive about this size (1GiB)"
    )
    parse.add_argument(
        "--bandwidth", type=_amount, metavar="BPS", help="per-connection cap (CDSE: 20MB)"
    )
    parse.add_argument("--no-range", action="store_true", help="ignore Range headers")
    parse.add_argument(
        "--max-downloads", type=int, metavar="N", help="concurrent streams per user (default 4)"
    )
    parse.add_argument(
        "--stac-rate",
        type=float,
        metavar="N",
        help="STAC requests per second per client before 429 (CDSE: about 5; 0: no limit)",
    )
    parse.add_argument("--data-dir", type=Path, metavar="D", help="cache folder")
    parse.add_argument("--seed", type=int, help="seed of the synthetic catalogue")
    parse.add_argument("--latency", type=float, metavar="S", help="added delay per request")
    parse.add_argument(
        "--expire-midstream", action="store_true", help="cut streams whose token expires"
    )
    parse.add_argument("--verbose", action="store_true", help="log connections to stderr")
    return parse


def config_from(arguments: argparse.Namespace) -> EmulatorConfig:
    """The configuration the parsed command line asks for."""
    config = EmulatorConfig(tls=not arguments.no_tls, host=arguments.host)
    if arguments.port_base:
        config.identity_port = arguments.port_base
        config.catalogue_port = arguments.port_base + 1
        config.download_port = arguments.port_base + 2
        config.zipper_port = arguments.port_base + 3
        config.stac_port = arguments.port_base + 4
        config.quicklook_port = arguments.port_base + 5
        config.quicklook_files_port = arguments.port_base + 6
    if arguments.scale is not None:
        config.size_scale = arguments.scale
    if arguments.product_size is not None:
        config.product_size_bytes = arguments.product_size
    if arguments.bandwidth is not None:
        config.bandwidth_bytes_per_s = arguments.bandwidth
    if arguments.no_range:
        config.range_supported = False
    if arguments.max_downloads is not None:
        config.max_concurrent_downloads = arguments.max_downloads
    if arguments.stac_rate is not None:
        config.stac_requests_per_s = arguments.stac_rate or None
    if arguments.data_dir is not None:
        config.data_dir = arguments.data_dir
    if arguments.seed is not None:
        config.seed = arguments.seed
    if arguments.latency is not None:
        config.latency_s = arguments.latency
    config.expire_midstream = arguments.expire_midstream
    return config


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    arguments = parser().parse_args(argv)
    if arguments.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(threadName)s %(message)s")
    run(config_from(arguments), announce=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
