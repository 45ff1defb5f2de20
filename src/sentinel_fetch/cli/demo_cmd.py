"""``sentinel-fetch demo``: the whole job against the built-in CDSE emulator, no account needed."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import click

from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import Command, out_option

__all__ = ["demo"]

# A search as the Copernicus Browser sends it (§4 of our CDSE notes): "?&", %20/%27,
# nested groups, $top=50 and two $expand. The host is replaced by the emulator's.
_BROWSER_QUERY = (
    "?&$filter=((Collection/Name%20eq%20%27SENTINEL-2%27%20and%20(Attributes/OData.CSC."
    "StringAttribute/any(att:att/Name%20eq%20%27instrumentShortName%27%20and%20att/OData.CSC."
    "StringAttribute/Value%20eq%20%27MSI%27)%20and%20(contains(Name,%27L2A%27)%20and%20OData."
    "CSC.Intersects(area=geography%27SRID=4326;POLYGON%20((11.2%2046.3,%2011.6%2046.3,%2011.6"
    "%2046.6,%2011.2%2046.6,%2011.2%2046.3))%27)))%20and%20Online%20eq%20true)%20and%20Content"
    "Date/Start%20ge%202023-07-01T00:00:00.000Z%20and%20ContentDate/Start%20lt%202023-07-31T"
    "23:59:59.999Z)&$orderby=ContentDate/Start%20desc&$expand=Attributes&$count=True&$top=50"
    "&$expand=Assets&$skip=0"
)


@click.command(cls=Command)
@out_option(default="sentinel-fetch-demo", help="Save folder for the demo's products.")
@click.option(
    "--products",
    default=6,
    show_default=True,
    type=click.IntRange(1, 16),
    help="How many to download.",
)
@click.pass_obj
def demo(context: CliContext, save_path: str, products: int) -> int:
    """Search and download with no account: a CDSE emulator runs inside this process.

    The demo pastes a Copernicus Browser search URL, lists every result, downloads a
    few products in parallel (4 connections, 10 MB/s each, one stream cut mid-way to
    show resume), verifies their checksums, and lists the finish folder. Run it twice:
    the second run skips what is already verified.
    """
    from sentinel_fetch.cli.render import BarProgress, LogProgress, human_bytes
    from sentinel_fetch.client import Client, Credentials
    from sentinel_fetch.emulator import DEMO_PASSWORD, DEMO_USERNAME, Emulator, EmulatorConfig
    from sentinel_fetch.emulator.faults import CutFault
    from sentinel_fetch.settings import Endpoints, Settings

    say = _Say(context)
    say.step(
        "Starting a local CDSE emulator (identity, catalogue and download hosts, HTTPS; "
        "the first start builds its catalogue, about 15 s)..."
    )
    config = EmulatorConfig(size_scale=0.02, bandwidth_bytes_per_s=10_000_000)
    with Emulator(config) as emulator, contextlib.ExitStack() as stack:
        settings = Settings(
            endpoints=Endpoints(
                emulator.identity_url, emulator.catalogue_url, emulator.download_url
            ),
            ca_bundle=str(emulator.ca_bundle) if emulator.ca_bundle else None,
            save_path=Path(save_path),
        )
        credentials = Credentials(
            DEMO_USERNAME, DEMO_PASSWORD, source="the emulator's demo account"
        )
        client = stack.enter_context(Client(settings, credentials))
        url = emulator.catalogue_url + "/Products" + _BROWSER_QUERY
        say.step("1. A search URL as copied from the Copernicus Browser's developer tools:")
        say.detail(url[:160] + "...")
        result = client.search(url)
        found = list(result)
        say.step(f"2. The catalogue holds {len(found)} matching products (all pages fetched):")
        for product in found:
            cloud = product.cloud_cover
            say.detail(
                f"{product.name}  {human_bytes(product.size)}"
                + (f"  cloud {cloud:.0f} %" if cloud is not None else "")
            )
        chosen = found[:products]
        say.step(
            f"3. Downloading {len(chosen)} of them, 4 at a time, into {settings.finish_path} "
            "(one stream will be cut mid-way to show resume)..."
        )
        if len(chosen) > 1:
            emulator.faults.add(CutFault(product=chosen[1].id, after_bytes=chosen[1].size // 2))
        progress: Any
        if context.interactive:
            from rich.console import Console

            with BarProgress(Console(stderr=True)) as progress:
                report = client.download(chosen, progress=progress)
        else:
            report = client.download(chosen, progress=LogProgress(interval_s=2))
        say.step(
            f"4. {report.count('downloaded')} downloaded and verified, {report.count('skipped')} "
            f"already there, {report.count('failed')} failed; {human_bytes(report.bytes_received)} "
            f"in {report.elapsed_s:.1f} s with {report.logins} login(s), at most "
            f"{report.peak_connections} connections open"
        )
        for result_item in report.results:
            how = result_item.verified_by or "verified in an earlier run"
            if result_item.attempts > 1:
                how += f", {result_item.attempts} attempts: resumed where the cut left off"
            say.detail(f"{result_item.status:<10} {result_item.product.name}  ({how})")
    say.step(f"5. The finish folder {settings.finish_path}:")
    for entry in sorted(os.scandir(settings.finish_path), key=lambda e: e.name):
        say.detail(f"{entry.name}  {human_bytes(entry.stat().st_size)}")
    say.step("The same against real CDSE (free account at https://dataspace.copernicus.eu):")
    say.detail(
        "export CDSE_USERNAME=you@example.com CDSE_PASSWORD=...   (or sentinel-fetch login --save)"
    )
    say.detail("sentinel-fetch search --url-file SearchURL.txt")
    say.detail("sentinel-fetch download --url-file SearchURL.txt --out data")
    say.detail("sentinel-fetch status data")
    say.step(f"Run 'sentinel-fetch demo' again: verified products in {save_path} are skipped.")
    return 0 if report.ok else 1


class _Say:
    def __init__(self, context: CliContext) -> None:
        self.quiet = context.quiet

    def step(self, text: str) -> None:
        if not self.quiet:
            click.secho(text, bold=True, err=True)

    def detail(self, text: str) -> None:
        if not self.quiet:
            click.echo(f"   {text}", err=True)
